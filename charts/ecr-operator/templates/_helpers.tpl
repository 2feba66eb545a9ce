{{/* The chart name. */}}
{{- define "ecr-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: release-based unless overridden. */}}
{{- define "ecr-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "ecr-operator.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "ecr-operator.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Selector labels (immutable once installed). */}}
{{- define "ecr-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecr-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "ecr-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ecr-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ecr-operator
{{- end }}

{{/* The ServiceAccount name. */}}
{{- define "ecr-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecr-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The controllers to run: as set, or all minus the pull-secret ones without their RBAC. */}}
{{- define "ecr-operator.controllers" -}}
{{- if .Values.operator.controllers }}
{{- join "," .Values.operator.controllers }}
{{- else if not .Values.rbac.pullSecrets }}
{{- "registry,repository,lifecycle-policy,replication" }}
{{- end }}
{{- end }}

{{/*
Sharding (docs/sharding.md). The argument of these is a dict: "root" (the chart's context) and
"shard" ("" for the main instance).
*/}}

{{/* The name of an instance's objects: the full name, with -shard-<shard> for a shard. */}}
{{- define "ecr-operator.instanceName" -}}
{{- if .shard }}
{{- printf "%s-shard-%s" (include "ecr-operator.fullname" .root) .shard | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- include "ecr-operator.fullname" .root }}
{{- end }}
{{- end }}

{{/*
An instance's pod selector labels: the main instance's are the chart's selector labels (unchanged
by sharding); a shard's name differs, so no Deployment's selector matches another's pods.
*/}}
{{- define "ecr-operator.podSelectorLabels" -}}
{{- if .shard -}}
app.kubernetes.io/name: {{ printf "%s-shard-%s" (include "ecr-operator.name" .root) .shard | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- else }}
{{- include "ecr-operator.selectorLabels" .root }}
{{- end }}
{{- end }}

{{/*
An instance's --watch-label-selector: a shard serves the objects labelled with its name; the main
instance, only when there are shards, serves the objects without the label; else nothing (all).
*/}}
{{- define "ecr-operator.watchLabelSelector" -}}
{{- if .shard }}
{{- printf "sharding.ecr-operator.dev/key=%s" .shard }}
{{- else if .root.Values.sharding.shards }}
{{- "!sharding.ecr-operator.dev/key" }}
{{- end }}
{{- end }}
