"""Who deploys an object: Argo CD, Flux or Helm, read from the labels and annotations they leave on it.

Pure functions of one object (a dict in the API's JSON shape). The marks, most specific first (an
Argo CD or Flux deployment of a Helm chart carries Helm's marks too, and it is the GitOps controller
that will put the object back):

* Argo CD: the `argocd.argoproj.io/tracking-id` annotation (`<app>:<group>/<Kind>:<ns>/<name>`,
  annotation tracking), the tracking label `argocd.argoproj.io/instance` (label tracking with that
  `application.instanceLabelKey`), or any other `argocd.argoproj.io/*` annotation with the tracking
  label `app.kubernetes.io/instance` (label tracking) naming the application.
* Flux: `kustomize.toolkit.fluxcd.io/name` + `/namespace` labels (a Kustomization) or
  `helm.toolkit.fluxcd.io/name` + `/namespace` (a HelmRelease).
* Helm: the `meta.helm.sh/release-name` annotation or `app.kubernetes.io/managed-by: Helm`; the chart
  and its version from the `helm.sh/chart` label are the revision.

A revision is named only when the object carries one (`helm.sh/chart`, Flux's
`kustomize.toolkit.fluxcd.io/revision` label or annotation, `argocd.argoproj.io/revision`): Argo CD
and current Flux versions do not write the Git commit on the objects they apply.
"""

from __future__ import annotations

from typing import Any

from bot.model import KubeObject, Management, ObjectRef

ARGO_PREFIX = "argocd.argoproj.io/"
ARGO_TRACKING_ID = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"
ARGO_INSTANCE_LABEL = "argocd.argoproj.io/instance"
"""The tracking label many Argo CD installations configure (`application.instanceLabelKey`)."""
FLUX_KUSTOMIZE = "kustomize.toolkit.fluxcd.io/"
FLUX_HELM = "helm.toolkit.fluxcd.io/"
HELM_RELEASE = "meta.helm.sh/release-name"
HELM_NAMESPACE = "meta.helm.sh/release-namespace"
MANAGED_BY = "app.kubernetes.io/managed-by"
HELM_CHART = "helm.sh/chart"
MAX_NAME = 253


def _meta(obj: KubeObject) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return (labels if isinstance(labels, dict) else {}), (annotations if isinstance(annotations, dict) else {})


def _clean(value: Any) -> str | None:
    text = str(value).strip() if isinstance(value, str | int) else ""
    return text[:MAX_NAME] if text else None


def management(obj: KubeObject) -> Management | None:
    """The GitOps tool or Helm release that manages `obj`, or None for an object applied by hand."""
    labels, annotations = _meta(obj)
    both = {**labels, **annotations}
    tracking = _clean(annotations.get(ARGO_TRACKING_ID))
    argo_label = _clean(labels.get(ARGO_INSTANCE_LABEL))
    if tracking or argo_label or any(str(k).startswith(ARGO_PREFIX) for k in annotations):
        app = tracking.split(":", 1)[0] if tracking else argo_label or _clean(labels.get(INSTANCE_LABEL))
        return Management(
            "argocd",
            app or "(unknown application)",
            _clean(annotations.get(ARGO_PREFIX + "revision")),
            "argocd-application-controller",
        )
    for prefix, controller in ((FLUX_KUSTOMIZE, "kustomize-controller"), (FLUX_HELM, "helm-controller")):
        name = _clean(labels.get(prefix + "name"))
        if name:
            namespace = _clean(labels.get(prefix + "namespace"))
            revision = _clean(both.get(prefix + "revision")) or (
                _clean(labels.get(HELM_CHART)) if prefix == FLUX_HELM else None
            )
            return Management("flux", f"{namespace}/{name}" if namespace else name, revision, controller)
    release = _clean(annotations.get(HELM_RELEASE))
    if release or str(labels.get(MANAGED_BY, "")).lower() == "helm":
        return Management(
            "helm",
            release or _clean(labels.get(INSTANCE_LABEL)) or "(unknown release)",
            _clean(labels.get(HELM_CHART)),
            "helm",
        )
    return None


def flux_kind(obj: KubeObject) -> str:
    labels, _ = _meta(obj)
    return "helmrelease" if _clean(labels.get(FLUX_HELM + "name")) else "kustomization"


def in_words(managed: Management, obj: KubeObject) -> str:
    """`Argo CD (app shop-checkout)`, `Flux (Kustomization flux-system/apps)`, `Helm (release web)`."""
    if managed.tool == "argocd":
        return f"Argo CD (app {managed.name})"
    if managed.tool == "flux":
        kind = "HelmRelease" if flux_kind(obj) == "helmrelease" else "Kustomization"
        return f"Flux ({kind} {managed.name})"
    return f"Helm (release {managed.name})"


def rollback_warning(obj: KubeObject, ref: ObjectRef) -> str | None:
    """What to know before rolling back a managed workload by hand: its controller will put Git's (or
    the chart's) version back, and the way to roll back that sticks. None when nothing manages it."""
    managed = management(obj)
    if managed is None:
        return None
    name, namespace = managed.name, ref.namespace or "default"
    if managed.tool == "argocd":
        return (
            f"Warning: {ref.kind.lower()} {ref.name} is managed by Argo CD application {name}: if its auto-sync "
            "is on, Argo CD will revert this rollback to what Git says (self-heal), and the next sync will in any "
            f"case. Instead: revert the commit in Git, or pause auto-sync (`argocd app set {name} --sync-policy "
            f"none`) and run `argocd app rollback {name}`."
        )
    if managed.tool == "flux":
        kind = flux_kind(obj)
        flux_ns, _, flux_name = name.rpartition("/")
        where = f" -n {flux_ns}" if flux_ns else ""
        return (
            f"Warning: {ref.kind.lower()} {ref.name} is managed by Flux {kind} {name}: Flux will revert this "
            "rollback at its next reconciliation. Instead: revert the commit in Git, or suspend it first "
            f"(`flux suspend {kind} {flux_name}{where}`) and resume it once Git is fixed."
        )
    return (
        f"Warning: {ref.kind.lower()} {ref.name} belongs to Helm release {name}: the next `helm upgrade` will undo "
        f"this rollback and Helm's history will not show it. Instead: `helm rollback {name} -n {namespace}`."
    )
