"""Where each kind the bot knows lives in the REST API. One table, used for every path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kind:
    kind: str
    group_version: str  # "v1" for the core group, else "apps/v1"
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return self.group_version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path; without `namespace` a namespaced kind is listed across all namespaces."""
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        parts = [base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("Pod", "v1", "pods"),
        Kind("Service", "v1", "services"),
        Kind("Endpoints", "v1", "endpoints"),
        Kind("ConfigMap", "v1", "configmaps"),
        Kind("Secret", "v1", "secrets"),
        Kind("Event", "v1", "events"),
        Kind("ResourceQuota", "v1", "resourcequotas"),
        Kind("LimitRange", "v1", "limitranges"),
        Kind("PersistentVolumeClaim", "v1", "persistentvolumeclaims"),
        Kind("ServiceAccount", "v1", "serviceaccounts"),
        Kind("Node", "v1", "nodes", namespaced=False),
        Kind("Namespace", "v1", "namespaces", namespaced=False),
        Kind("Deployment", "apps/v1", "deployments"),
        Kind("ReplicaSet", "apps/v1", "replicasets"),
        Kind("StatefulSet", "apps/v1", "statefulsets"),
        Kind("DaemonSet", "apps/v1", "daemonsets"),
        Kind("ControllerRevision", "apps/v1", "controllerrevisions"),
        Kind("Job", "batch/v1", "jobs"),
        Kind("CronJob", "batch/v1", "cronjobs"),
        Kind("Ingress", "networking.k8s.io/v1", "ingresses"),
        Kind("EndpointSlice", "discovery.k8s.io/v1", "endpointslices"),
        Kind("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers"),
        Kind("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
    )
}

ALIASES: dict[str, str] = {
    "po": "Pod",
    "pod": "Pod",
    "pods": "Pod",
    "svc": "Service",
    "service": "Service",
    "services": "Service",
    "cm": "ConfigMap",
    "configmap": "ConfigMap",
    "configmaps": "ConfigMap",
    "secret": "Secret",
    "secrets": "Secret",
    "node": "Node",
    "nodes": "Node",
    "no": "Node",
    "ns": "Namespace",
    "namespace": "Namespace",
    "namespaces": "Namespace",
    "deploy": "Deployment",
    "deployment": "Deployment",
    "deployments": "Deployment",
    "rs": "ReplicaSet",
    "replicaset": "ReplicaSet",
    "replicasets": "ReplicaSet",
    "sts": "StatefulSet",
    "statefulset": "StatefulSet",
    "statefulsets": "StatefulSet",
    "ds": "DaemonSet",
    "daemonset": "DaemonSet",
    "daemonsets": "DaemonSet",
    "job": "Job",
    "jobs": "Job",
    "cj": "CronJob",
    "cronjob": "CronJob",
    "cronjobs": "CronJob",
    "ing": "Ingress",
    "ingress": "Ingress",
    "ingresses": "Ingress",
    "hpa": "HorizontalPodAutoscaler",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler",
    "pvc": "PersistentVolumeClaim",
    "persistentvolumeclaim": "PersistentVolumeClaim",
    "quota": "ResourceQuota",
    "resourcequota": "ResourceQuota",
}


def kind_named(word: str) -> Kind | None:
    """The Kind for a user-typed kind name or alias ("deploy", "Deployment", "svc"), else None."""
    canonical = ALIASES.get(word.lower()) or (word if word in KINDS else None)
    return KINDS.get(canonical) if canonical else None
