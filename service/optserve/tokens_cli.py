"""`optserve tokens create|list|revoke`: token management through a running server."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc

from .v1 import token_pb2, token_pb2_grpc

ROLES = {
    "read": token_pb2.TOKEN_ROLE_READ,
    "write": token_pb2.TOKEN_ROLE_WRITE,
    "admin": token_pb2.TOKEN_ROLE_ADMIN,
}
ROLE_NAMES = {v: k for k, v in ROLES.items()}

EXAMPLES = """examples:
  export OPTSERVE_TOKEN=<an admin token, e.g. the server's bootstrap token>
  optserve tokens create --role write --project vision --name "training cluster"
  optserve tokens create --role read --project "*" --name dashboards
  optserve tokens create --role admin --name ops
  optserve tokens list
  optserve tokens revoke 3
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    tokens = sub.add_parser(
        "tokens",
        help="create, list and revoke API tokens (needs an admin token)",
        description="Manage API tokens through a running server. Secrets are shown once,"
        " at create; the server keeps only their SHA-256.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tokens.add_argument(
        "--target",
        default=os.environ.get("OPTSERVE_TARGET", "localhost:50051"),
        help="server address (env OPTSERVE_TARGET; default localhost:50051)",
    )
    tokens.add_argument(
        "--tls-ca",
        type=Path,
        default=os.environ.get("OPTSERVE_TLS_CA") or None,
        help="CA certificate (PEM) to connect over TLS (env OPTSERVE_TLS_CA)",
    )
    actions = tokens.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a token and print its secret once")
    create.add_argument("--role", choices=sorted(ROLES), required=True)
    create.add_argument(
        "--project",
        action="append",
        default=[],
        help='a project the token reaches (repeatable; "*" for every project); not for admin',
    )
    create.add_argument("--name", default="", help="who or what the token is for")
    actions.add_parser("list", help="list every token, revoked ones included")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("id", help="the token's id (from `optserve tokens list`)")
    tokens.set_defaults(run=_main)


def _main(args: argparse.Namespace) -> None:
    code = run(args)
    if code:
        sys.exit(code)


def _stub(args: argparse.Namespace) -> token_pb2_grpc.TokenServiceStub:
    if args.tls_ca:
        credentials = grpc.ssl_channel_credentials(Path(args.tls_ca).read_bytes())
        channel = grpc.secure_channel(args.target, credentials)
    else:
        channel = grpc.insecure_channel(args.target)
    return token_pb2_grpc.TokenServiceStub(channel)


def _when(t: token_pb2.Token, field: str) -> str:
    if not t.HasField(field):
        return "-"
    return getattr(t, field).ToDatetime().strftime("%Y-%m-%d %H:%M")


def _row(t: token_pb2.Token) -> str:
    projects = ",".join(t.projects) or "-"
    role = ROLE_NAMES.get(t.role, "?")
    created, revoked = _when(t, "create_time"), _when(t, "revoke_time")
    return f"{t.id:>4}  {role:5}  {projects:20.20}  {created:16}  {revoked:16}  {t.name}"


def run(args: argparse.Namespace) -> int:
    token = os.environ.get("OPTSERVE_TOKEN", "")
    metadata = [("authorization", f"Bearer {token}")] if token else []
    stub = _stub(args)
    try:
        if args.action == "create":
            reply = stub.CreateToken(
                token_pb2.CreateTokenRequest(
                    token=token_pb2.Token(
                        name=args.name, role=ROLES[args.role], projects=args.project
                    )
                ),
                metadata=metadata,
                timeout=30,
            )
            print(f"token {reply.token.id} ({args.role}) created; its secret, shown only now:")
            print(reply.secret)
        elif args.action == "list":
            reply = stub.ListTokens(token_pb2.ListTokensRequest(), metadata=metadata, timeout=30)
            print(f"{'ID':>4}  {'ROLE':5}  {'PROJECTS':20}  {'CREATED':16}  {'REVOKED':16}  NAME")
            for t in reply.tokens:
                print(_row(t))
        else:
            reply = stub.RevokeToken(
                token_pb2.RevokeTokenRequest(id=args.id), metadata=metadata, timeout=30
            )
            print(f"token {reply.token.id} revoked")
    except grpc.RpcError as error:
        print(
            f"optserve tokens {args.action}: {error.code().name}: {error.details()}",
            file=sys.stderr,
        )
        return 1
    return 0
