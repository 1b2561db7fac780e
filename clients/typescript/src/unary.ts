// One unary gRPC call as a promise, with a deadline, rejecting with a `SwitchyardError`.

import { Metadata, type CallOptions, type ClientUnaryCall, type ServiceError } from "@grpc/grpc-js";
import { fromGrpcError } from "./errors.js";

/** The four-argument form every generated unary method has. */
type UnaryMethod<Request, Response> = (
  request: Request,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Response) => void,
) => ClientUnaryCall;

export function unary<Request, Response>(
  method: UnaryMethod<Request, Response>,
  request: Request,
  timeoutMs: number,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    method(request, new Metadata(), { deadline: Date.now() + timeoutMs }, (error, response) => {
      if (error) {
        reject(fromGrpcError(error));
      } else {
        resolve(response);
      }
    });
  });
}
