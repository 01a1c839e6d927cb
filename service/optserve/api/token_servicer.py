"""The TokenService servicer: token management for administrators."""

from __future__ import annotations

import threading

import grpc

from ..application import Application
from ..domain.errors import InvalidArgument
from ..v1 import token_pb2 as pb
from ..v1 import token_pb2_grpc
from . import converters as conv
from .auth import Authenticator
from .errors import handle_errors
from .servicer import call_of


class TokenServicer(token_pb2_grpc.TokenServiceServicer):
    def __init__(
        self,
        app: Application,
        authenticator: Authenticator | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.stopping = stopping or threading.Event()

    @handle_errors
    def CreateToken(self, request, context: grpc.ServicerContext):
        token, secret = self.app.create_token(
            conv.token_from_proto(request.token), call_of(context, self.stopping)
        )
        if self.authenticator is not None:
            self.authenticator.token_created()
        return pb.CreateTokenResponse(token=conv.token_to_proto(token), secret=secret)

    @handle_errors
    def ListTokens(self, request, context):
        tokens = self.app.list_tokens(call_of(context, self.stopping))
        return pb.ListTokensResponse(tokens=[conv.token_to_proto(t) for t in tokens])

    @handle_errors
    def RevokeToken(self, request, context):
        if not request.id:
            raise InvalidArgument.single("id", "required: a token id")
        token = self.app.revoke_token(request.id, call_of(context, self.stopping))
        return pb.RevokeTokenResponse(token=conv.token_to_proto(token))

    @handle_errors
    def GetCallerToken(self, request, context):
        token = self.app.caller_token(call_of(context, self.stopping))
        return pb.GetCallerTokenResponse(token=conv.token_to_proto(token))
