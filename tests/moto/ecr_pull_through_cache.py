"""moto extension for ecr-operator's tests: ECR pull-through cache rules.

moto 5.2.5 implements none of ECR's pull-through cache operations. This module adds the five the
operator calls, on moto's own ECRResponse/ECRBackend, following the request and response shapes
of the ECR API reference (CreatePullThroughCacheRule, DescribePullThroughCacheRules,
UpdatePullThroughCacheRule, DeletePullThroughCacheRule, ValidatePullThroughCacheRule) and the
checks ECR documents:

- ecrRepositoryPrefix: 2 to 30 characters, ECR's repository-name pattern with an optional
  trailing slash, or `ROOT`; upstreamRepositoryPrefix: the same, default `ROOT`, and only with a
  non-`ROOT` ecrRepositoryPrefix (InvalidParameterException);
- upstreamRegistryUrl: one of the registries ECR supports (UnsupportedUpstreamRegistryException),
  and when upstreamRegistry is given, the URL of that kind (InvalidParameterException);
- credentialArn: 50 to 612 characters, a Secrets Manager ARN under `ecr-pullthroughcache/`
  (InvalidParameterException); required by the registries that need authentication (Docker Hub,
  GitHub, GitLab, Azure, Chainguard), refused for an ECR upstream (which authenticates with
  customRoleArn); the secret must exist in moto's Secrets Manager, same account and region
  (SecretNotFoundException);
- customRoleArn: an IAM role ARN, only for an ECR upstream (InvalidParameterException);
- one rule per prefix (PullThroughCacheRuleAlreadyExistsException), at most 50 rules per registry
  (LimitExceededException), and PullThroughCacheRuleNotFoundException for an unknown prefix.

ValidatePullThroughCacheRule cannot reach the upstream registry: it answers isValid=true when the
rule needs no credentials, or when its secret exists and holds a JSON object with non-empty
`username` and `accessToken` (the format ECR documents); otherwise isValid=false with a failure.
Prefixes ECR reserves are not documented in the API reference; this extension, like the operator,
reserves `aws` and `ecr` (ValidationException). Nothing is cached: pulls through the rule are not
served.
"""

import json
import re
from datetime import datetime, timezone

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ecr.exceptions import InvalidParameterException, ValidationException
from moto.ecr.models import ECRBackend
from moto.ecr.responses import ECRResponse

MAX_RULES = 50
PREFIX = re.compile(r"^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$")
CREDENTIAL_ARN = re.compile(r"^arn:aws:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
ECR_PRIVATE = re.compile(r"^[0-9]{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
AZURE = re.compile(r"^[a-zA-Z0-9-]+\.azurecr\.io$")
RESERVED = {"aws", "ecr"}
# upstreamRegistry -> (whether its URL matches, whether credentials are required/allowed)
KINDS = {
    "ecr-public": (lambda u: u == "public.ecr.aws", "optional"),
    "k8s": (lambda u: u == "registry.k8s.io", "optional"),
    "quay": (lambda u: u == "quay.io", "optional"),
    "docker-hub": (lambda u: u == "registry-1.docker.io", "required"),
    "github-container-registry": (lambda u: u == "ghcr.io", "required"),
    "gitlab-container-registry": (lambda u: u == "registry.gitlab.com", "required"),
    "azure-container-registry": (lambda u: bool(AZURE.match(u)), "required"),
    "chainguard": (lambda u: u == "cgr.dev", "required"),
    "ecr": (lambda u: bool(ECR_PRIVATE.match(u)), "forbidden"),
}


class PullThroughCacheRuleAlreadyExistsException(ServiceException):
    code = "PullThroughCacheRuleAlreadyExistsException"


class PullThroughCacheRuleNotFoundException(ServiceException):
    code = "PullThroughCacheRuleNotFoundException"


class UnsupportedUpstreamRegistryException(ServiceException):
    code = "UnsupportedUpstreamRegistryException"


class SecretNotFoundException(ServiceException):
    code = "SecretNotFoundException"


class LimitExceededException(ServiceException):
    code = "LimitExceededException"


def _constraint(field, value, rule):
    return InvalidParameterException(
        f"Invalid parameter at '{field}' failed to satisfy constraint: '{rule}'"
    )


def _rules(backend):
    # Not set in __init__: moto's reset builds new backends, and this stays per backend.
    if not hasattr(backend, "_pull_through_cache_rules"):
        backend._pull_through_cache_rules = {}
    return backend._pull_through_cache_rules


def _kind_of(url):
    for kind, (matches, _) in KINDS.items():
        if matches(url):
            return kind
    return None


def _check_prefix(field, value):
    if value is None or not (2 <= len(value) <= 30) or not PREFIX.match(value):
        raise _constraint(field, value, "must be ROOT or satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?' with a length of 2 to 30")


def _secret(backend, arn):
    from moto.secretsmanager.models import secretsmanager_backends

    secrets = secretsmanager_backends[backend.account_id][backend.region_name].secrets
    secret = secrets.get(arn)
    if secret is None or secret.is_deleted():
        return None
    return secret


def _check_credential(backend, arn, need):
    if arn is None:
        if need == "required":
            raise InvalidParameterException("A credentialArn is required for this upstream registry")
        return
    if need == "forbidden":
        raise InvalidParameterException("A credentialArn cannot be used with an Amazon ECR upstream registry: use customRoleArn")
    if not (50 <= len(arn) <= 612) or not CREDENTIAL_ARN.match(arn):
        raise _constraint("credentialArn", arn, "must satisfy regular expression '^arn:aws:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\\-pullthroughcache\\/[a-zA-Z0-9\\/_+=.@-]+$'")
    if _secret(backend, arn) is None:
        raise SecretNotFoundException(f"The secret {arn} could not be found in Secrets Manager")


def _check_role(role, kind):
    if role is None:
        return
    if kind != "ecr":
        raise InvalidParameterException("A customRoleArn can only be used with an Amazon ECR upstream registry")
    if len(role) > 2048 or not ROLE_ARN.match(role):
        raise _constraint("customRoleArn", role, "must be an IAM role ARN")


def create_pull_through_cache_rule(self, prefix, url, kind, credential, role, upstream_prefix):
    _check_prefix("ecrRepositoryPrefix", prefix)
    if prefix.rstrip("/") in RESERVED:
        raise ValidationException(f"The repository prefix '{prefix}' is reserved by Amazon ECR")
    if not url:
        raise InvalidParameterException("upstreamRegistryUrl is required")
    found = _kind_of(url)
    if found is None:
        raise UnsupportedUpstreamRegistryException(f"The upstream registry '{url}' is not supported")
    if kind is not None:
        if kind not in KINDS:
            raise _constraint("upstreamRegistry", kind, "Member must satisfy enum value set: " + ", ".join(KINDS))
        if kind != found:
            raise InvalidParameterException(f"The upstream registry URL '{url}' is not a {kind} registry")
    _check_credential(self, credential, KINDS[found][1])
    _check_role(role, found)
    if upstream_prefix is not None:
        _check_prefix("upstreamRepositoryPrefix", upstream_prefix)
        if prefix == "ROOT" and upstream_prefix != "ROOT":
            raise InvalidParameterException("upstreamRepositoryPrefix can only be set when ecrRepositoryPrefix is not ROOT")
        if found != "ecr" and upstream_prefix != "ROOT":
            raise InvalidParameterException("upstreamRepositoryPrefix can only be set for an Amazon ECR upstream registry")
    rules = _rules(self)
    if prefix in rules:
        raise PullThroughCacheRuleAlreadyExistsException(
            f"A pull through cache rule with prefix '{prefix}' already exists in the registry with id '{self.account_id}'"
        )
    if len(rules) >= MAX_RULES:
        raise LimitExceededException(f"A registry can have at most {MAX_RULES} pull through cache rules")
    now = datetime.now(timezone.utc)
    rule = {
        "ecrRepositoryPrefix": prefix,
        "upstreamRegistryUrl": url,
        "createdAt": now,
        "updatedAt": now,
        "registryId": self.account_id,
        "upstreamRegistry": found,
        "upstreamRepositoryPrefix": upstream_prefix or "ROOT",
    }
    if credential is not None:
        rule["credentialArn"] = credential
    if role is not None:
        rule["customRoleArn"] = role
    rules[prefix] = rule
    return rule


def _get(self, prefix):
    rule = _rules(self).get(prefix)
    if rule is None:
        raise PullThroughCacheRuleNotFoundException(
            f"The pull through cache rule with prefix '{prefix}' does not exist in the registry with id '{self.account_id}'"
        )
    return rule


def update_pull_through_cache_rule(self, prefix, credential, role):
    _check_prefix("ecrRepositoryPrefix", prefix)
    rule = _get(self, prefix)
    need = KINDS[rule["upstreamRegistry"]][1]
    _check_credential(self, credential, need)
    _check_role(role, rule["upstreamRegistry"])
    for key, value in (("credentialArn", credential), ("customRoleArn", role)):
        if value is None:
            rule.pop(key, None)
        else:
            rule[key] = value
    rule["updatedAt"] = datetime.now(timezone.utc)
    return rule


def validate_pull_through_cache_rule(self, prefix):
    rule = _get(self, prefix)
    valid, failure = True, None
    arn = rule.get("credentialArn")
    if arn is not None:
        secret = _secret(self, arn)
        if secret is None:
            valid, failure = False, f"The secret {arn} could not be found in Secrets Manager"
        else:
            try:
                current = secret.versions.get(secret.default_version_id or "", {})
                value = json.loads(current.get("secret_string") or "")
            except ValueError:
                value = None
            if not isinstance(value, dict) or not value.get("username") or not value.get("accessToken"):
                valid, failure = False, "The secret must be a JSON object with non-empty username and accessToken"
    out = {k: v for k, v in rule.items() if k not in ("createdAt", "updatedAt", "upstreamRegistry")}
    out["isValid"] = valid
    if failure is not None:
        out["failure"] = failure
    return out


# ECRResponse handlers: moto dispatches an X-Amz-Target action to the snake_case method.


def _r_create(self):
    rule = self.ecr_backend.create_pull_through_cache_rule(
        self._get_param("ecrRepositoryPrefix"),
        self._get_param("upstreamRegistryUrl"),
        self._get_param("upstreamRegistry"),
        self._get_param("credentialArn"),
        self._get_param("customRoleArn"),
        self._get_param("upstreamRepositoryPrefix"),
    )
    return ActionResult({k: v for k, v in rule.items() if k != "updatedAt"})


def _r_describe(self):
    prefixes = self._get_param("ecrRepositoryPrefixes")
    max_results = self._get_param("maxResults") or 100
    if not (1 <= max_results <= 1000):
        raise _constraint("maxResults", max_results, "Member must have value between 1 and 1000")
    backend = self.ecr_backend
    if prefixes:
        found = [_get(backend, p) for p in prefixes]
    else:
        found = [_rules(backend)[k] for k in sorted(_rules(backend))]
    start = int(self._get_param("nextToken") or 0)
    page = found[start : start + max_results]
    result = {"pullThroughCacheRules": page}
    if start + max_results < len(found):
        result["nextToken"] = str(start + max_results)
    return ActionResult(result)


def _r_update(self):
    rule = self.ecr_backend.update_pull_through_cache_rule(
        self._get_param("ecrRepositoryPrefix"),
        self._get_param("credentialArn"),
        self._get_param("customRoleArn"),
    )
    keys = ("ecrRepositoryPrefix", "registryId", "updatedAt", "credentialArn", "customRoleArn", "upstreamRepositoryPrefix")
    return ActionResult({k: rule[k] for k in keys if k in rule})


def _r_delete(self):
    backend = self.ecr_backend
    prefix = self._get_param("ecrRepositoryPrefix")
    rule = _get(backend, prefix)
    del _rules(backend)[prefix]
    return ActionResult({k: v for k, v in rule.items() if k not in ("updatedAt", "upstreamRegistry")})


def _r_validate(self):
    return ActionResult(self.ecr_backend.validate_pull_through_cache_rule(self._get_param("ecrRepositoryPrefix")))


def install():
    ECRBackend.create_pull_through_cache_rule = create_pull_through_cache_rule
    ECRBackend.update_pull_through_cache_rule = update_pull_through_cache_rule
    ECRBackend.validate_pull_through_cache_rule = validate_pull_through_cache_rule
    ECRResponse.create_pull_through_cache_rule = _r_create
    ECRResponse.describe_pull_through_cache_rules = _r_describe
    ECRResponse.update_pull_through_cache_rule = _r_update
    ECRResponse.delete_pull_through_cache_rule = _r_delete
    ECRResponse.validate_pull_through_cache_rule = _r_validate
