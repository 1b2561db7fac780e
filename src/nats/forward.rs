//! Settlements of deliveries another node made, forwarded to it: only the node that delivered a
//! message holds its ack handle, and a client may settle through any node.
//!
//! A node listens on `P._n.settle.NODE`. A settlement's ids are split by the node their id names
//! ([`node_of`]); each other node gets its part as one core NATS request and answers with the
//! ids it does not hold. A node that is gone holds nothing: its ids are unknown (JetStream gives
//! its deliveries back once their AckWait passes).

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Shared, consumer, unavailable};
use crate::{broker::Settlement, error::BrokerError};

/// How long a forwarded settlement may take, the owner's round trip to JetStream included.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(6);

/// A settlement as it travels between nodes.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Forwarded {
    ack: Vec<String>,
    nack: Vec<String>,
    nack_delay_ms: u64,
    reject: Vec<String>,
    extend: Vec<String>,
}

/// The owner's answer.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Unknown(Vec<String>),
    Failed(String),
}

/// The node a delivery id names: its first part.
pub fn node_of(delivery_id: &str) -> &str {
    delivery_id.split('.').next().unwrap_or_default()
}

/// Which of a settlement's lists of ids.
type IdList = fn(&mut Settlement) -> &mut Vec<String>;

/// Splits `settlement` into this node's part and the other nodes' parts, by node.
pub fn split(node: &str, settlement: Settlement) -> (Settlement, HashMap<String, Settlement>) {
    let Settlement {
        ack,
        nack,
        nack_delay,
        reject,
        extend,
    } = settlement;
    let empty = || Settlement {
        nack_delay,
        ..Settlement::default()
    };
    let mut own = empty();
    let mut others: HashMap<String, Settlement> = HashMap::new();
    let lists: [(Vec<String>, IdList); 4] = [
        (ack, |s| &mut s.ack),
        (nack, |s| &mut s.nack),
        (reject, |s| &mut s.reject),
        (extend, |s| &mut s.extend),
    ];
    for (ids, list) in lists {
        for id in ids {
            let owner = node_of(&id);
            let part = match owner == node {
                true => &mut own,
                false => others.entry(owner.to_owned()).or_insert_with(empty),
            };
            list(part).push(id);
        }
    }
    (own, others)
}

/// Has `node` settle its part, and returns the ids it does not hold.
pub async fn forward(
    shared: &Shared,
    node: &str,
    settlement: Settlement,
) -> Result<Vec<String>, BrokerError> {
    let ids: Vec<String> = [
        &settlement.ack,
        &settlement.nack,
        &settlement.reject,
        &settlement.extend,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let forwarded = Forwarded {
        nack_delay_ms: u64::try_from(settlement.nack_delay.as_millis()).unwrap_or(u64::MAX),
        ack: settlement.ack,
        nack: settlement.nack,
        reject: settlement.reject,
        extend: settlement.extend,
    };
    let body = serde_json::to_vec(&forwarded).map_err(unavailable)?;
    let asked = shared
        .client
        .request(shared.subjects.settle(node), body.into());
    let answer = match tokio::time::timeout(FORWARD_TIMEOUT, asked).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) if error.kind() == async_nats::RequestErrorKind::NoResponders => {
            return Ok(ids);
        }
        Ok(Err(error)) => return Err(unavailable(error)),
        Err(_) => {
            return Err(unavailable(
                "the node that made these deliveries did not answer in time",
            ));
        }
    };
    match serde_json::from_slice(&answer.payload).map_err(unavailable)? {
        Answer::Unknown(unknown) => Ok(unknown),
        Answer::Failed(reason) => Err(BrokerError::ClusterUnavailable { reason }),
    }
}

/// Settles what other nodes forward to this one, for as long as the broker runs.
pub async fn listen(shared: &Arc<Shared>) -> Result<(), async_nats::SubscribeError> {
    let mut asked = shared
        .client
        .subscribe(shared.subjects.settle(&shared.node))
        .await?;
    let weak = Arc::downgrade(shared);
    let shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let request = tokio::select! {
                () = shutdown.cancelled() => return,
                request = asked.next() => request,
            };
            let (Some(request), Some(shared)) = (request, weak.upgrade()) else {
                return;
            };
            let Some(reply) = request.reply else {
                continue;
            };
            tokio::spawn(async move {
                let answer = match serde_json::from_slice::<Forwarded>(&request.payload) {
                    Ok(forwarded) => {
                        let settlement = Settlement {
                            ack: forwarded.ack,
                            nack: forwarded.nack,
                            nack_delay: Duration::from_millis(forwarded.nack_delay_ms),
                            reject: forwarded.reject,
                            extend: forwarded.extend,
                        };
                        match consumer::settle_own(&shared, settlement).await {
                            Ok(unknown) => Answer::Unknown(unknown),
                            Err(error) => Answer::Failed(error.to_string()),
                        }
                    }
                    Err(error) => Answer::Failed(format!("not a settlement: {error}")),
                };
                let answer = serde_json::to_vec(&answer).unwrap_or_default();
                let _ = shared.client.publish(reply, answer.into()).await;
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settlement_splits_by_the_node_each_id_names() {
        let ids = |list: &[&str]| list.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
        let settlement = Settlement {
            ack: ids(&["a.1.1.g", "b.1.1.g"]),
            nack: ids(&["b.2.5.g"]),
            nack_delay: Duration::from_secs(2),
            reject: ids(&["c.1.1.g"]),
            extend: ids(&["a.1.2.g"]),
        };
        let (own, others) = split("a", settlement);
        assert_eq!(own.ack, ids(&["a.1.1.g"]));
        assert_eq!(own.extend, ids(&["a.1.2.g"]));
        assert_eq!(others["b"].ack, ids(&["b.1.1.g"]));
        assert_eq!(others["b"].nack, ids(&["b.2.5.g"]));
        assert_eq!(others["b"].nack_delay, Duration::from_secs(2));
        assert_eq!(others["c"].reject, ids(&["c.1.1.g"]));
        assert_eq!(others.len(), 2);
    }
}
