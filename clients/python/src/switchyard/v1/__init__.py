"""The code generated from proto/switchyard/v1 by grpcio-tools (see scripts/generate.py).

`broker_pb2` and `admin_pb2` hold the messages, `broker_pb2_grpc` and `admin_pb2_grpc` the stubs.
"""
