// Command vxnet-cni is vxnet's CNI plugin: runtimes (podman, containerd,
// CRI-O, the kubelet) run it with a network configuration of type
// "vxnet"; it asks the local vxnet agent for the container's endpoint.
// See the README's "With podman, containerd and Kubernetes".
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/plugin/cni"
)

func main() {
	p := &cni.Plugin{Dial: func(socket string) cni.Agent { return api.NewClient(socket) }}
	skel.PluginMainFuncs(skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status},
		version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"), "vxnet CNI plugin: a client of the local vxnet agent")
}
