//! The `switchyard.v1.Admin` gRPC service: queue group management, for admin tokens only.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{auth, convert};
use crate::{broker::Broker, config::Config, pb};

/// The Admin service over any [`Broker`].
#[derive(Debug, Clone)]
pub struct AdminService<B> {
    broker: B,
    config: Arc<Config>,
}

impl<B: Broker> AdminService<B> {
    pub fn new(broker: B, config: Arc<Config>) -> Self {
        Self { broker, config }
    }
}

#[tonic::async_trait]
impl<B: Broker> pb::admin_server::Admin for AdminService<B> {
    async fn declare_group(
        &self,
        request: Request<pb::DeclareGroupRequest>,
    ) -> Result<Response<pb::DeclareGroupResponse>, Status> {
        auth::caller(&request)?.admin()?;
        let spec =
            convert::group_spec(request.into_inner(), &self.config).map_err(convert::status)?;
        self.broker
            .declare_group(spec)
            .await
            .map_err(convert::status)?;
        Ok(Response::new(pb::DeclareGroupResponse {}))
    }

    async fn delete_group(
        &self,
        request: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<pb::DeleteGroupResponse>, Status> {
        auth::caller(&request)?.admin()?;
        let request = request.into_inner();
        let pattern =
            convert::pattern(&request.topic, "topic", &self.config).map_err(convert::status)?;
        let group =
            convert::group_name(&request.group, "group", &self.config).map_err(convert::status)?;
        self.broker
            .delete_group(pattern, group)
            .await
            .map_err(convert::status)?;
        Ok(Response::new(pb::DeleteGroupResponse {}))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        auth::caller(&request)?.admin()?;
        let groups = self.broker.list_groups().await.map_err(convert::status)?;
        Ok(Response::new(pb::ListGroupsResponse {
            groups: groups.into_iter().map(convert::group_info).collect(),
        }))
    }
}
