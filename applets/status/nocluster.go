//go:build noetcd

package status

import (
	"io"

	"nfsrecover/pkg/cluster"
)

func printCluster(w io.Writer, v cluster.View) { io.WriteString(w, "cluster             "+v.Err+"\n") }

func clusterMetrics(cluster.View) []metric { return nil }
