// Command vxnet-cni is vxnet's CNI plugin alone: runtimes (podman,
// containerd, CRI-O, the kubelet) run it as type "vxnet" (install it as
// BIN-DIR/vxnet); it asks the local vxnet agent for the container's
// endpoint. The vxnet binary does the same when run with CNI_COMMAND set
// (vxnet cni install).
package main

import "github.com/vxnet/vxnet/plugin/cni"

func main() { cni.Main() }
