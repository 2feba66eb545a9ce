"""moto extension for ecr-operator's tests: ECR replication configurations with many rules.

moto 5.2.5 refuses a replication configuration with more than one rule ("This feature is
disabled"). ECR accepts up to 10 rules with up to 25 distinct destinations in all and 100
filters per rule (see docs/dev/ecr-facts.md §2). This module replaces exactly one method,
`ECRBackend.put_replication_configuration`, with one that:

- accepts 0 to 10 rules (more: ValidationException, as for any constraint violation);
- refuses more than 25 distinct (region, registryId) destinations across all rules, more than 100
  repository filters in a rule, a filterType other than PREFIX_MATCH, a malformed region or
  registryId (ValidationException);
- refuses a destination equal to the source registry and region with moto's own
  InvalidParameterException text (unchanged from moto);
- stores the configuration exactly as given, like moto does.

Nothing else changes: nothing is replicated, and destination registry policies are not checked.
The exact error codes ECR uses for the 10/25/100 limits are not documented; ValidationException is
an assumption.
"""

import re

from moto.ecr.exceptions import InvalidParameterException, ValidationException
from moto.ecr.models import ECRBackend

MAX_RULES = 10
MAX_DESTINATIONS = 25
MAX_FILTERS = 100
REGION = re.compile(r"^[0-9a-z-]{2,25}$")
ACCOUNT = re.compile(r"^[0-9]{12}$")


def put_replication_configuration(self, replication_config):
    rules = replication_config.get("rules", [])
    if len(rules) > MAX_RULES:
        raise ValidationException(f"A replication configuration can have at most {MAX_RULES} rules")
    destinations = set()
    for rule in rules:
        filters = rule.get("repositoryFilters", [])
        if len(filters) > MAX_FILTERS:
            raise ValidationException(f"A replication rule can have at most {MAX_FILTERS} repository filters")
        for f in filters:
            if f.get("filterType") != "PREFIX_MATCH":
                raise ValidationException("filterType must be PREFIX_MATCH")
        for dest in rule.get("destinations", []):
            if not REGION.match(dest.get("region", "")) or not ACCOUNT.match(dest.get("registryId", "")):
                raise ValidationException("Invalid replication destination")
            if dest["region"] == self.region_name and dest["registryId"] == self.account_id:
                raise InvalidParameterException(
                    "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
                    "'Replication destination cannot be the same as the source registry'"
                )
            destinations.add((dest["region"], dest["registryId"]))
    if len(destinations) > MAX_DESTINATIONS:
        raise ValidationException(f"A replication configuration can have at most {MAX_DESTINATIONS} distinct destinations")
    self.replication_config = replication_config
    return {"replicationConfiguration": replication_config}


def install():
    ECRBackend.put_replication_configuration = put_replication_configuration
