#!/usr/bin/env bash
# Removes what scripts/deploy.sh created: the Talos cluster (its Docker containers,
# network and state), its kube context, and the local image registry.
# Safe to run when some or all of it is already gone.
#
# Environment: TASKBOARD_CLUSTER (default taskboard), as for deploy.sh.
set -euo pipefail

CLUSTER="${TASKBOARD_CLUSTER:-taskboard}"
CONTEXT="admin@${CLUSTER}"
REGISTRY_CONTAINER="taskboard-registry"

say() { printf 'destroy: %s\n' "$*"; }

if command -v talosctl >/dev/null 2>&1; then
  say "destroying the Talos cluster ${CLUSTER}"
  talosctl cluster destroy --name "$CLUSTER" || say "no cluster ${CLUSTER} to destroy"
else
  say "talosctl not found: skipping the cluster (remove its containers with: docker ps -a --filter name=${CLUSTER}-)"
fi

if command -v kubectl >/dev/null 2>&1; then
  if kubectl config get-contexts "$CONTEXT" >/dev/null 2>&1; then
    say "removing the kube context ${CONTEXT}"
    kubectl config delete-context "$CONTEXT" >/dev/null || true
    kubectl config delete-cluster "$CLUSTER" >/dev/null 2>&1 || true
    kubectl config delete-user "$CONTEXT" >/dev/null 2>&1 || true
  fi
fi

if command -v docker >/dev/null 2>&1; then
  if docker container inspect "$REGISTRY_CONTAINER" >/dev/null 2>&1; then
    say "removing the registry ${REGISTRY_CONTAINER}"
    docker rm -f "$REGISTRY_CONTAINER" >/dev/null
  else
    say "no registry ${REGISTRY_CONTAINER}"
  fi
fi
say "done"
