#!/usr/bin/env bash
# Taskboard on a local Kubernetes cluster: Talos Linux in Docker, a local image registry,
# the image built and pushed, `helmfile -e dev sync`, every rollout waited for.
# Safe to run again: what exists is reused, what changed is rolled out.
#
# Environment (all optional):
#   TASKBOARD_CLUSTER   Talos cluster name (default taskboard; kube context admin@<name>)
#   TASKBOARD_WORKERS   worker nodes besides the control plane (default 0: one node)
#   TASKBOARD_TAG       image tag (default: derived from the built images, so an unchanged
#                       build keeps its tag and a changed one rolls out)
#   HELMFILE_ENV        helmfile environment (default dev)
# Exports TASKBOARD_REGISTRY, TASKBOARD_TAG and TASKBOARD_KUBE_CONTEXT for helmfile.
set -euo pipefail

# Only shell builtins until the tool check has passed: it must work on any PATH.
case "${BASH_SOURCE[0]}" in
  */*) cd "${BASH_SOURCE[0]%/*}/.." ;;
  *) cd .. ;;
esac

CLUSTER="${TASKBOARD_CLUSTER:-taskboard}"
WORKERS="${TASKBOARD_WORKERS:-0}"
HELMFILE_ENV="${HELMFILE_ENV:-dev}"
NAMESPACE="taskboard"
CONTEXT="admin@${CLUSTER}"
# The Docker network of the cluster; its gateway (the host, 10.5.0.1) is the registry
# mirror endpoint in deploy/talos/cluster-patch.yaml.
CIDR="10.5.0.0/24"
REGISTRY_CONTAINER="taskboard-registry"
REGISTRY_PORT="5000"
# Image names: deploy/environments/default.yaml (image.repository, sesLocal.repository).
IMAGE_REPOSITORY="taskboard"
SES_REPOSITORY="taskboard-ses-local"
export TASKBOARD_REGISTRY="localhost:${REGISTRY_PORT}"

say() { printf 'deploy: %s\n' "$*"; }
die() { printf 'deploy: %s\n' "$*" >&2; exit 1; }

install_hint() {
  case "$1" in
    docker) echo "  docker    Docker Engine 24+: https://docs.docker.com/engine/install/" ;;
    talosctl) echo "  talosctl  Talos CLI 1.9+: curl -sL https://talos.dev/install | sh" ;;
    kubectl) echo "  kubectl   https://kubernetes.io/docs/tasks/tools/ (within one minor version of the cluster)" ;;
    helm) echo "  helm      Helm 3: https://helm.sh/docs/intro/install/" ;;
    helmfile) echo "  helmfile  helmfile 1.x: https://github.com/helmfile/helmfile/releases" ;;
  esac
}

# --- 1. tools ------------------------------------------------------------------------
missing=()
for tool in docker talosctl kubectl helm helmfile; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'deploy: missing %s; install:\n' "${missing[*]}" >&2
  for tool in "${missing[@]}"; do install_hint "$tool" >&2; done
  exit 1
fi
docker info >/dev/null 2>&1 || die "docker is installed but no Docker engine answers (is it running, and may you use its socket?)"

# --- 2. registry ---------------------------------------------------------------------
if ! docker container inspect "$REGISTRY_CONTAINER" >/dev/null 2>&1; then
  say "starting the image registry ${REGISTRY_CONTAINER} on port ${REGISTRY_PORT}"
  docker run -d --restart=always --name "$REGISTRY_CONTAINER" -p "${REGISTRY_PORT}:5000" registry:2 >/dev/null
elif [ "$(docker container inspect -f '{{.State.Running}}' "$REGISTRY_CONTAINER")" != "true" ]; then
  say "starting the stopped registry ${REGISTRY_CONTAINER}"
  docker start "$REGISTRY_CONTAINER" >/dev/null
else
  say "registry ${REGISTRY_CONTAINER} is running"
fi

# --- 3. cluster ----------------------------------------------------------------------
if docker container inspect "${CLUSTER}-controlplane-1" >/dev/null 2>&1; then
  say "Talos cluster ${CLUSTER} exists: reusing it"
else
  say "creating the Talos cluster ${CLUSTER} (Docker provisioner; a few minutes)"
  talosctl cluster create \
    --provisioner docker \
    --name "$CLUSTER" \
    --cidr "$CIDR" \
    --controlplanes 1 \
    --workers "$WORKERS" \
    --config-patch @deploy/talos/cluster-patch.yaml
fi
kubectl config use-context "$CONTEXT" >/dev/null \
  || die "no kube context ${CONTEXT}; run scripts/destroy.sh, then this script again"
kubectl wait --for=condition=Ready nodes --all --timeout=10m

# Talos ships no StorageClass: local-path-provisioner, volumes under /var.
say "default StorageClass (local-path-provisioner)"
kubectl apply -k deploy/talos/local-path-provisioner >/dev/null
kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout=5m

# --- 4. images -----------------------------------------------------------------------
say "building the images (Dockerfile targets runtime and ses-local)"
docker build --target runtime -t "${TASKBOARD_REGISTRY}/${IMAGE_REPOSITORY}:build" .
docker build --target ses-local -t "${TASKBOARD_REGISTRY}/${SES_REPOSITORY}:build" .
if [ -z "${TASKBOARD_TAG:-}" ]; then
  ids="$(docker image inspect -f '{{.Id}}' "${TASKBOARD_REGISTRY}/${IMAGE_REPOSITORY}:build" "${TASKBOARD_REGISTRY}/${SES_REPOSITORY}:build")"
  if command -v sha256sum >/dev/null 2>&1; then digest="$(printf '%s' "$ids" | sha256sum)"; else digest="$(printf '%s' "$ids" | shasum -a 256)"; fi
  TASKBOARD_TAG="dev-${digest:0:12}"
fi
export TASKBOARD_TAG
IMAGE="${TASKBOARD_REGISTRY}/${IMAGE_REPOSITORY}:${TASKBOARD_TAG}"
SES_IMAGE="${TASKBOARD_REGISTRY}/${SES_REPOSITORY}:${TASKBOARD_TAG}"
docker tag "${TASKBOARD_REGISTRY}/${IMAGE_REPOSITORY}:build" "$IMAGE"
docker tag "${TASKBOARD_REGISTRY}/${SES_REPOSITORY}:build" "$SES_IMAGE"
say "pushing ${IMAGE} and ${SES_IMAGE}"
docker push -q "$IMAGE" >/dev/null
docker push -q "$SES_IMAGE" >/dev/null

# --- 5. release ----------------------------------------------------------------------
# The namespace and its Pod Security labels are the release taskboard-namespace (helmfile).
# A namespace made by an earlier version of this script (kubectl, not Helm) is handed to
# that release: Helm adopts an object that carries its release's ownership metadata.
if kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 \
  && [ -z "$(kubectl get namespace "$NAMESPACE" -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}')" ]; then
  say "handing the namespace ${NAMESPACE} to the release taskboard-namespace"
  kubectl annotate namespace "$NAMESPACE" --overwrite \
    meta.helm.sh/release-name=taskboard-namespace meta.helm.sh/release-namespace=default >/dev/null
  kubectl label namespace "$NAMESPACE" --overwrite app.kubernetes.io/managed-by=Helm >/dev/null
fi

# helm and the hooks' kubectl use this context (helmfile.yaml.gotmpl).
export TASKBOARD_KUBE_CONTEXT="$CONTEXT"
say "helmfile -e ${HELMFILE_ENV} sync (image tag ${TASKBOARD_TAG}, kube context ${CONTEXT})"
helmfile -e "$HELMFILE_ENV" sync

# --- 6. rollouts ---------------------------------------------------------------------
say "waiting for every rollout in ${NAMESPACE}"
for workload in $(kubectl -n "$NAMESPACE" get deployments,statefulsets -o name); do
  kubectl -n "$NAMESPACE" rollout status "$workload" --timeout=10m
done

cat <<EOF

Taskboard is running in the Talos cluster '${CLUSTER}' (kube context ${CONTEXT}).

  # the gateway on http://127.0.0.1:8080 (leave it running)
  kubectl -n ${NAMESPACE} port-forward svc/gateway 8080:8080

  # the test page: log in or register, pick a workspace, watch the live events
  open http://127.0.0.1:8080/

  # a load run: a user, a workspace, then 2000 task creations, 50 at a time
  B=http://127.0.0.1:8080
  curl -s -X POST \$B/auth/register -H 'content-type: application/json' \\
    -d '{"name":"Load","email":"load@example.com","password":"Secret-passw0rd"}' >/dev/null
  TOKEN=\$(curl -s -X POST \$B/auth/login -H 'content-type: application/json' \\
    -d '{"email":"load@example.com","password":"Secret-passw0rd"}' | jq -r .access_token)
  WS=\$(curl -s -X POST \$B/workspaces -H "authorization: Bearer \$TOKEN" \\
    -H 'content-type: application/json' -d '{"name":"Load"}' | jq -r .id)
  hey -n 2000 -c 50 -m POST -H "Authorization: Bearer \$TOKEN" -H 'content-type: application/json' \\
    -d '{"title":"load"}' \$B/workspaces/\$WS/tasks

  # e-mail that notify sent (the SES stand-in)
  kubectl -n ${NAMESPACE} port-forward svc/ses-local 8005:8005   # then http://127.0.0.1:8005/

  # remove the cluster and the registry
  scripts/destroy.sh
EOF
