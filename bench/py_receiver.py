#!/usr/bin/python3
"""py_receiver.py PYPROTO_DIR PORT CERT KEY CA - a reference receiver in the
reference gRPC (python3-grpcio) for `make bench`: it serves
PublishFlowStream over mutual TLS, counts what it receives and acknowledges
every 1000 events (and at the end), as sonde-collector would, without
storing anything. Prints "ready" when it listens; exits on SIGTERM."""
import signal
import sys
import threading
from concurrent import futures

import grpc

sys.path.insert(0, sys.argv[1])
from sonde.v1 import d3events_pb2, events_pb2  # noqa: E402

ACK_EVERY = 1000


def publish(requests, context):
    last = 0
    n = 0
    for ev in requests:
        last = ev.seq
        n += 1
        if n % ACK_EVERY == 0:
            yield d3events_pb2.PublishResponse(status=d3events_pb2.PUBLISH_STATUS_OK,
                                               acked_seq=last, accepted=n)
    yield d3events_pb2.PublishResponse(status=d3events_pb2.PUBLISH_STATUS_OK, acked_seq=last,
                                       accepted=n)


def main():
    port, cert, key, ca = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler("sonde.v1.D3Events", {
        "PublishFlowStream": grpc.stream_stream_rpc_method_handler(
            publish, request_deserializer=events_pb2.Flow.FromString,
            response_serializer=d3events_pb2.PublishResponse.SerializeToString)})
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())],
                                        root_certificates=open(ca, "rb").read(),
                                        require_client_auth=True)
    server.add_secure_port("127.0.0.1:" + port, creds)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    print("ready", flush=True)
    done.wait()
    server.stop(1)


if __name__ == "__main__":
    main()
