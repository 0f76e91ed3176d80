//go:build !linux

package main

// defaultDockerPlugin: Docker on Windows finds plugins on named pipes;
// there the plugin is served only when asked for.
const defaultDockerPlugin = "off"
