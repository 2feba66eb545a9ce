"""moto extension for ecr-operator's tests: a registry's account settings, pull-time update
exclusions and managed signing configuration.

moto 5.2.5 implements none of these ECR operations. This module adds the eight the operator calls,
in the request and response shapes of the ECR API reference, per account and region:

- GetAccountSetting / PutAccountSetting: the names BASIC_SCAN_TYPE_VERSION (AWS_NATIVE, CLAIR),
  REGISTRY_POLICY_SCOPE (V1, V2) and BLOB_MOUNTING (ENABLED, DISABLED); another name or value is
  ValidationException. Defaults, as a new registry answers: AWS_NATIVE, V2, DISABLED.
- RegisterPullTimeUpdateExclusion / DeregisterPullTimeUpdateExclusion /
  ListPullTimeUpdateExclusions: IAM role or user ARNs (InvalidParameterException otherwise);
  registering one twice is ValidationException, deregistering an unknown one
  ExclusionNotFoundException; the list pages with maxResults/nextToken.
- GetSigningConfiguration / PutSigningConfiguration / DeleteSigningConfiguration: 1 to 10 rules,
  each an AWS Signer signing profile ARN and 0 to 100 WILDCARD_MATCH repository filters
  (InvalidParameterException); Get or Delete without a configuration is
  SigningConfigurationNotFoundException.

The exact limits ECR applies to exclusions are not in the API reference; none is enforced. Nothing
acts on the settings: no image is scanned, mounted or signed, and pulls record no time.
"""

import re

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ecr.exceptions import InvalidParameterException, ValidationException
from moto.ecr.responses import ECRResponse

SETTINGS = {
    "BASIC_SCAN_TYPE_VERSION": ({"AWS_NATIVE", "CLAIR"}, "AWS_NATIVE"),
    "REGISTRY_POLICY_SCOPE": ({"V1", "V2"}, "V2"),
    "BLOB_MOUNTING": ({"ENABLED", "DISABLED"}, "DISABLED"),
}
PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[\w+=,.@/-]+$")
SIGNING_PROFILE = re.compile(r"^arn:aws[a-z-]*:signer:[a-z0-9-]+:[0-9]{12}:/signing-profiles/[\w.-]+$")


class ExclusionNotFoundException(ServiceException):
    code = "ExclusionNotFoundException"


class SigningConfigurationNotFoundException(ServiceException):
    code = "SigningConfigurationNotFoundException"


def _state(backend):
    if not hasattr(backend, "_registry_settings"):
        backend._registry_settings = {"settings": {}, "exclusions": [], "signing": None}
    return backend._registry_settings


def _r_get_account_setting(self):
    name = self._get_param("name")
    if name not in SETTINGS:
        raise ValidationException(f"Invalid account setting name '{name}'")
    value = _state(self.ecr_backend)["settings"].get(name, SETTINGS[name][1])
    return ActionResult({"name": name, "value": value})


def _r_put_account_setting(self):
    name, value = self._get_param("name"), self._get_param("value")
    if name not in SETTINGS:
        raise ValidationException(f"Invalid account setting name '{name}'")
    if value not in SETTINGS[name][0]:
        raise ValidationException(f"Invalid value '{value}' for account setting {name}")
    _state(self.ecr_backend)["settings"][name] = value
    return ActionResult({"name": name, "value": value})


def _principal(self):
    arn = self._get_param("principalArn")
    if arn is None or not PRINCIPAL.match(arn):
        raise InvalidParameterException(
            "Invalid parameter at 'principalArn' failed to satisfy constraint: 'must be an IAM role or user ARN'"
        )
    return arn


def _r_register(self):
    arn = _principal(self)
    exclusions = _state(self.ecr_backend)["exclusions"]
    if arn in exclusions:
        raise ValidationException(f"The principal {arn} is already excluded from pull-time updates")
    exclusions.append(arn)
    return ActionResult({"principalArn": arn})


def _r_deregister(self):
    arn = _principal(self)
    exclusions = _state(self.ecr_backend)["exclusions"]
    if arn not in exclusions:
        raise ExclusionNotFoundException(f"The principal {arn} is not excluded from pull-time updates")
    exclusions.remove(arn)
    return ActionResult({"principalArn": arn})


def _r_list(self):
    exclusions = sorted(_state(self.ecr_backend)["exclusions"])
    max_results = self._get_param("maxResults") or 100
    start = int(self._get_param("nextToken") or 0)
    result = {"pullTimeUpdateExclusions": exclusions[start : start + max_results]}
    if start + max_results < len(exclusions):
        result["nextToken"] = str(start + max_results)
    return ActionResult(result)


def _r_get_signing(self):
    signing = _state(self.ecr_backend)["signing"]
    if signing is None:
        raise SigningConfigurationNotFoundException("The registry has no signing configuration")
    return ActionResult({"registryId": self.ecr_backend.account_id, "signingConfiguration": signing})


def _r_put_signing(self):
    config = self._get_param("signingConfiguration") or {}
    rules = config.get("rules") or []
    if not (1 <= len(rules) <= 10):
        raise InvalidParameterException("A signing configuration has 1 to 10 rules")
    for rule in rules:
        if not SIGNING_PROFILE.match(rule.get("signingProfileArn") or ""):
            raise InvalidParameterException("signingProfileArn must be an AWS Signer signing profile ARN")
        filters = rule.get("repositoryFilters") or []
        if len(filters) > 100 or any(f.get("filterType") != "WILDCARD_MATCH" or not f.get("filter") for f in filters):
            raise InvalidParameterException("at most 100 WILDCARD_MATCH repository filters per rule")
    _state(self.ecr_backend)["signing"] = config
    return ActionResult({"signingConfiguration": config})


def _r_delete_signing(self):
    state = _state(self.ecr_backend)
    if state["signing"] is None:
        raise SigningConfigurationNotFoundException("The registry has no signing configuration")
    config, state["signing"] = state["signing"], None
    return ActionResult({"registryId": self.ecr_backend.account_id, "signingConfiguration": config})


def install():
    ECRResponse.get_account_setting = _r_get_account_setting
    ECRResponse.put_account_setting = _r_put_account_setting
    ECRResponse.register_pull_time_update_exclusion = _r_register
    ECRResponse.deregister_pull_time_update_exclusion = _r_deregister
    ECRResponse.list_pull_time_update_exclusions = _r_list
    ECRResponse.get_signing_configuration = _r_get_signing
    ECRResponse.put_signing_configuration = _r_put_signing
    ECRResponse.delete_signing_configuration = _r_delete_signing
