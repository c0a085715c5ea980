{{/* Names, labels and the operator's RBAC rules. */}}

{{- define "aiassistant-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aiassistant-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aiassistant-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aiassistant-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aiassistant-operator.labels" -}}
{{ include "aiassistant-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: aiassistant
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "aiassistant-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aiassistant-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "aiassistant-operator.image" -}}
{{- printf "%s:%s" .image.repository (default .chart.AppVersion .image.tag) -}}
{{- end -}}

{{- /*
RBAC rules: these must equal aiassistant_operator.rbac.RULES (tests/chart checks it).
"namespacedRules" are granted per watched namespace (Role) or cluster-wide (ClusterRole);
"clusterRules" are cluster-scoped reads kopf needs in both modes.
*/ -}}
{{- define "aiassistant-operator.namespacedRules" -}}
- apiGroups: [aiassistant.dev]
  resources: [aiassistants]
  verbs: [list, watch]
- apiGroups: [aiassistant.dev]
  resources: [aiassistants/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [list, watch, create, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{- define "aiassistant-operator.clusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end -}}
