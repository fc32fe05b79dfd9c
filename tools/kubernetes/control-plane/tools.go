//go:build tools

// The control plane the Kubernetes tests run: kube-apiserver, kube-controller-manager (its
// namespace controller finishes namespace deletions) and etcd, built from their Go modules.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
