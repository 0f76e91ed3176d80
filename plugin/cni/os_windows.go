package cni

// onWindows: endpoints are HNS endpoints, and the runtime gives no
// network namespace.
const onWindows = true
