"""The gateway: FaceSearch's public gRPC service."""

from facesearch_common import grpc_settings

grpc_settings.apply()  # before any module of the package imports grpc
