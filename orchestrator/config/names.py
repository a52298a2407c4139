"""Every AWS name an environment's stack uses, derived from (project, environment) alone.

One table, read by the serving program (which creates the resources), the local program
(which emulates them) and the IAM policy generator (which scopes each permission to
them): a name written in two places would let a policy and the stack drift apart, and
the first deploy of a project named anything but `edgeship` would be denied.

Names are exact wherever AWS lets the stack choose them, so a policy can name them
exactly: a wildcard such as `myproj-dev-*` would also match `myproj-dev-2-fn`, another
environment's role. Only the bucket carries a suffix AWS-side (Pulumi's `bucket_prefix`
adds 26 characters so a bucket name freed by a destroy is not reclaimed by a stranger),
and the API's and distribution's ids are assigned by AWS: those are scoped by the tag
`TAG_KEY = base`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# The tag every taggable resource of a stack carries; IAM conditions on
# aws:RequestTag / aws:ResourceTag use it where AWS assigns the resource's id.
TAG_KEY = "edgeship:stack"
# IAM path of the stack's roles: `role/edgeship/<base>/...` can be matched without
# matching another environment whose base begins with this one's.
ROLE_PATH_ROOT = "/edgeship/"
# S3 allows 63 characters; Pulumi's bucket_prefix appends 26 (a hyphen-free random suffix).
_BUCKET_PREFIX_MAX = 37
_BASE_MAX = 40


def base_name(project: str, stack: str) -> str:
    """`<project>-<stack>` as S3, Lambda, IAM and CloudWatch names all accept it: lower
    case, letters, digits and single hyphens (S3 bucket names allow nothing else)."""
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", f"{project}-{stack}".lower())).strip("-")
    return name[:_BASE_MAX].rstrip("-") or "edgeship"


def _bucket_prefix(base: str) -> str:
    prefix = f"{base}-models-"
    if len(prefix) <= _BUCKET_PREFIX_MAX:
        return prefix
    # Too long to keep whole: a digest of the full base keeps two long names that share
    # their first characters apart (a plain cut would give them one prefix, and one
    # environment's policy would cover the other's bucket).
    digest = hashlib.sha256(base.encode()).hexdigest()[:6]
    head = base[: _BUCKET_PREFIX_MAX - len("-models-") - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}-models-"


@dataclass(frozen=True)
class ResourceNames:
    """The names of one environment's resources (see the module's docstring)."""

    project: str
    env: str
    base: str

    @staticmethod
    def of(project: str, env: str) -> ResourceNames:
        return ResourceNames(project=project, env=env, base=base_name(project, env))

    # -- storage ---------------------------------------------------------------------------
    @property
    def bucket_prefix(self) -> str:
        """The models bucket's name is this plus 26 characters chosen at creation."""
        return _bucket_prefix(self.base)

    # -- functions -------------------------------------------------------------------------
    @property
    def function(self) -> str:
        return f"{self.base}-infer"

    @property
    def authorizer(self) -> str:
        return f"{self.base}-origin"

    @property
    def function_log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def authorizer_log_group(self) -> str:
        return f"/aws/lambda/{self.authorizer}"

    # -- identity --------------------------------------------------------------------------
    @property
    def role_path(self) -> str:
        """`/edgeship/<base>/`: both roles, and nothing else, sit under it."""
        return f"{ROLE_PATH_ROOT}{self.base}/"

    @property
    def function_role(self) -> str:
        return f"{self.base}-fn"

    @property
    def authorizer_role(self) -> str:
        return f"{self.base}-auth"

    @property
    def boundary_policy(self) -> str:
        """The managed policy an administrator creates once (`orchestrator iam-policy --role
        boundary`); both roles must carry it as their permissions boundary."""
        return f"{self.base}-function-boundary"

    # -- origin protection -----------------------------------------------------------------
    @property
    def origin_parameter(self) -> str:
        """The SSM parameter of the values the origin authorizer accepts."""
        return f"/{self.base}/origin-secrets"

    # -- API and edge ----------------------------------------------------------------------
    @property
    def api(self) -> str:
        return f"{self.base}-api"

    @property
    def api_log_group(self) -> str:
        return f"/aws/apigateway/{self.api}"

    @property
    def cache_policy(self) -> str:
        return f"{self.base}-infer-get"

    @property
    def tags(self) -> dict[str, str]:
        """Tags every taggable resource of the stack carries."""
        return {TAG_KEY: self.base}

    # -- ARNs ------------------------------------------------------------------------------
    def role_arn(self, account: str, role: str) -> str:
        return f"arn:aws:iam::{account}:role{self.role_path}{role}"

    def boundary_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:policy{ROLE_PATH_ROOT}{self.boundary_policy}"
