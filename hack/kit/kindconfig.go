package main

import "fmt"

// kindConfig is the kind config that goes with the kit's node image.
func kindConfig(nodeImage string) []byte {
	return fmt.Appendf(nil, `# kind config for the offline node image (written by go run ./hack/kit).
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  # The node image carries a bridge CNI config; kindnetd is not available offline.
  disableDefaultCNI: true
nodes:
  - role: control-plane
    image: %s
kubeadmConfigPatches:
  - |
    kind: InitConfiguration
    nodeRegistration:
      ignorePreflightErrors:
        - SystemVerification
  - |
    kind: ClusterConfiguration
    # ECDSA keys for the cluster's certificates: kubeadm makes about fifteen
    # key pairs at every create, and RSA-2048 ones cost seconds of two busy
    # cores. (kubeadm v1beta4 ClusterConfiguration.encryptionAlgorithm, in
    # k8s.io/kubernetes v1.37.2 cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go.)
    encryptionAlgorithm: ECDSA-P256
    # No leader election for the controller manager: a kind cluster has one,
    # and its first lease attempt comes before the API server has its RBAC
    # roles, so the retry cost two seconds of every start before any
    # controller ran. The list replaces kind's, so kind's own argument is
    # repeated. (--leader-elect: k8s.io/component-base v0.37.2
    # config/options/leaderelectionconfig.go.)
    controllerManager:
      extraArgs:
        - name: enable-hostpath-provisioner
          value: "true"
        - name: leader-elect
          value: "false"
  - |
    kind: KubeletConfiguration
    # This kind of host runs cgroup v1, which kubelet 1.37 refuses by default.
    failCgroupV1: false
`, nodeImage)
}
