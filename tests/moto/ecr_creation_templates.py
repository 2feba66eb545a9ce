"""moto extension for ecr-operator's tests: ECR repository creation templates.

moto 5.2.5 implements none of ECR's repository creation template operations. This module adds
the four the operator calls (CreateRepositoryCreationTemplate, DescribeRepositoryCreationTemplates,
UpdateRepositoryCreationTemplate, DeleteRepositoryCreationTemplate) in the request and response
shapes of the ECR API reference, with its documented checks:

- prefix: 1 to 256 characters, ECR's repository-name pattern with an optional trailing slash, or
  `ROOT` (InvalidParameterException);
- appliedFor: 1 to 3 of PULL_THROUGH_CACHE, REPLICATION, CREATE_ON_PUSH, required on create
  (InvalidParameterException);
- description at most 256 characters; imageTagMutability one of ECR's four values, exclusion
  filters only with the *_WITH_EXCLUSION values (1 to 5, WILDCARD); encryptionType AES256, KMS or
  KMS_DSSE, kmsKey only with KMS*; at most 50 resource tags; repositoryPolicy valid JSON of at
  most 10,240 characters; lifecyclePolicy valid JSON of 100 to 30,720 characters with a `rules`
  list; customRoleArn an IAM role ARN (InvalidParameterException);
- one template per prefix (TemplateAlreadyExistsException), TemplateNotFoundException for an
  unknown prefix, at most 100 templates per registry (LimitExceededException).

The policies are stored as given (ECR may reformat them; the operator compares semantically).
Nothing applies the templates: repositories created on push, by replication or by a pull-through
cache are not created by moto.
"""

import json
import re
from datetime import datetime, timezone

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ecr.exceptions import InvalidParameterException
from moto.ecr.models import ECRBackend
from moto.ecr.responses import ECRResponse

MAX_TEMPLATES = 100
PREFIX = re.compile(r"^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
APPLIED_FOR = {"PULL_THROUGH_CACHE", "REPLICATION", "CREATE_ON_PUSH"}
MUTABILITY = {"MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION"}
ENCRYPTION = {"AES256", "KMS", "KMS_DSSE"}


class TemplateAlreadyExistsException(ServiceException):
    code = "TemplateAlreadyExistsException"


class TemplateNotFoundException(ServiceException):
    code = "TemplateNotFoundException"


class LimitExceededException(ServiceException):
    code = "LimitExceededException"


def _templates(backend):
    if not hasattr(backend, "_creation_templates"):
        backend._creation_templates = {}
    return backend._creation_templates


def _invalid(message):
    return InvalidParameterException(message)


def _check(fields, creating):
    prefix = fields.get("prefix")
    if prefix is None or not (1 <= len(prefix) <= 256) or not PREFIX.match(prefix):
        raise _invalid("Invalid parameter at 'prefix' failed to satisfy constraint: 'must be ROOT or a repository name prefix'")
    applied = fields.get("appliedFor")
    if creating and not applied:
        raise _invalid("appliedFor is required")
    if applied is not None and (not (1 <= len(applied) <= 3) or not set(applied) <= APPLIED_FOR or len(set(applied)) != len(applied)):
        raise _invalid("appliedFor must hold 1 to 3 distinct values of PULL_THROUGH_CACHE, REPLICATION, CREATE_ON_PUSH")
    if len(fields.get("description") or "") > 256:
        raise _invalid("description must be at most 256 characters")
    mutability = fields.get("imageTagMutability")
    filters = fields.get("imageTagMutabilityExclusionFilters")
    if mutability is not None and mutability not in MUTABILITY:
        raise _invalid(f"imageTagMutability must be one of {sorted(MUTABILITY)}")
    if filters:
        if mutability not in ("MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION"):
            raise _invalid("imageTagMutabilityExclusionFilters need imageTagMutability *_WITH_EXCLUSION")
        if len(filters) > 5 or any(f.get("filterType") != "WILDCARD" for f in filters):
            raise _invalid("at most 5 WILDCARD imageTagMutabilityExclusionFilters")
    encryption = fields.get("encryptionConfiguration")
    if encryption is not None:
        kind = encryption.get("encryptionType")
        if kind not in ENCRYPTION:
            raise _invalid(f"encryptionType must be one of {sorted(ENCRYPTION)}")
        if kind == "AES256" and encryption.get("kmsKey"):
            raise _invalid("kmsKey is only allowed with encryptionType KMS or KMS_DSSE")
    if len(fields.get("resourceTags") or []) > 50:
        raise _invalid("at most 50 resourceTags")
    policy = fields.get("repositoryPolicy")
    if policy is not None:
        if len(policy) > 10240:
            raise _invalid("repositoryPolicy must be at most 10240 characters")
        try:
            json.loads(policy)
        except ValueError:
            raise _invalid("Invalid parameter at 'repositoryPolicy' failed to satisfy constraint: 'Invalid repository policy provided'")
    lifecycle = fields.get("lifecyclePolicy")
    if lifecycle is not None:
        if not (100 <= len(lifecycle) <= 30720):
            raise _invalid("lifecyclePolicy must be 100 to 30720 characters")
        try:
            rules = json.loads(lifecycle).get("rules")
        except (ValueError, AttributeError):
            rules = None
        if not isinstance(rules, list) or not rules:
            raise _invalid("Invalid parameter at 'lifecyclePolicy' failed to satisfy constraint: 'Lifecycle policy validation failure'")
    role = fields.get("customRoleArn")
    if role is not None and (len(role) > 2048 or not ROLE_ARN.match(role)):
        raise _invalid("customRoleArn must be an IAM role ARN")


FIELDS = (
    "prefix",
    "description",
    "encryptionConfiguration",
    "resourceTags",
    "imageTagMutability",
    "imageTagMutabilityExclusionFilters",
    "repositoryPolicy",
    "lifecyclePolicy",
    "appliedFor",
    "customRoleArn",
)


def _params(response):
    return {k: response._get_param(k) for k in FIELDS if response._get_param(k) is not None}


def _get(backend, prefix):
    template = _templates(backend).get(prefix)
    if template is None:
        raise TemplateNotFoundException(
            f"The repository creation template with prefix '{prefix}' does not exist in the registry with id '{backend.account_id}'"
        )
    return template


def _r_create(self):
    backend = self.ecr_backend
    fields = _params(self)
    _check(fields, creating=True)
    templates = _templates(backend)
    if fields["prefix"] in templates:
        raise TemplateAlreadyExistsException(
            f"A repository creation template with prefix '{fields['prefix']}' already exists in the registry with id '{backend.account_id}'"
        )
    if len(templates) >= MAX_TEMPLATES:
        raise LimitExceededException(f"A registry can have at most {MAX_TEMPLATES} repository creation templates")
    now = datetime.now(timezone.utc)
    template = dict(fields, createdAt=now, updatedAt=now)
    template.setdefault("imageTagMutability", "MUTABLE")
    template.setdefault("encryptionConfiguration", {"encryptionType": "AES256"})
    templates[fields["prefix"]] = template
    return ActionResult({"registryId": backend.account_id, "repositoryCreationTemplate": template})


def _r_describe(self):
    backend = self.ecr_backend
    prefixes = self._get_param("prefixes")
    if prefixes:
        found = [_get(backend, p) for p in prefixes]
    else:
        found = [_templates(backend)[k] for k in sorted(_templates(backend))]
    max_results = self._get_param("maxResults") or 100
    start = int(self._get_param("nextToken") or 0)
    result = {"registryId": backend.account_id, "repositoryCreationTemplates": found[start : start + max_results]}
    if start + max_results < len(found):
        result["nextToken"] = str(start + max_results)
    return ActionResult(result)


def _r_update(self):
    backend = self.ecr_backend
    fields = _params(self)
    template = _get(backend, fields.get("prefix"))
    merged = dict(template)
    merged.update(fields)
    # Exclusion filters go with the mutability they were given with.
    if "imageTagMutability" in fields and "imageTagMutabilityExclusionFilters" not in fields:
        merged.pop("imageTagMutabilityExclusionFilters", None)
    _check(merged, creating=False)
    merged["updatedAt"] = datetime.now(timezone.utc)
    _templates(backend)[merged["prefix"]] = merged
    return ActionResult({"registryId": backend.account_id, "repositoryCreationTemplate": merged})


def _r_delete(self):
    backend = self.ecr_backend
    prefix = self._get_param("prefix")
    template = _get(backend, prefix)
    del _templates(backend)[prefix]
    return ActionResult({"registryId": backend.account_id, "repositoryCreationTemplate": template})


def install():
    ECRResponse.create_repository_creation_template = _r_create
    ECRResponse.describe_repository_creation_templates = _r_describe
    ECRResponse.update_repository_creation_template = _r_update
    ECRResponse.delete_repository_creation_template = _r_delete
