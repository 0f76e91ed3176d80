package main

import "github.com/vxnet/vxnet/plugin/docker"

// defaultDockerPlugin is where Docker on Linux looks for the plugin.
const defaultDockerPlugin = docker.DefaultSocket
