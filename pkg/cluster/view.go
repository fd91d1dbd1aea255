package cluster

// View is the cluster as one node sees it, for status and doctor: etcd's
// health, the grace database with each member's flags and liveness, and
// this node's floating IPs and server scope. Err is set, and the rest
// may be partial, when etcd could not be read.
type View struct {
	Etcd     []Endpoint   `json:"etcd"`
	Current  uint64       `json:"current_epoch"`
	Recovery uint64       `json:"recovery_epoch"` // 0: the cluster is not in grace
	Members  []MemberView `json:"members"`
	VIPs     []VIPView    `json:"floating_ips,omitempty"`
	Scope    *ScopeView   `json:"v4_scope,omitempty"` // with backend = etcd
	Err      string       `json:"error,omitempty"`
}

// MemberView is one member of the grace database.
type MemberView struct {
	Node      string `json:"node"`
	Need      bool   `json:"need_grace"`
	Enforcing bool   `json:"enforcing"`
	Alive     bool   `json:"alive"` // its agent holds its lease
}

// VIPView is one floating IP: whether this node holds it now, the
// clients recorded against it and the NSM state last sent for it.
type VIPView struct {
	IP      string `json:"ip"`
	Held    bool   `json:"held_here"`
	Clients int    `json:"clients"`
	State   int32  `json:"nsm_state"` // 0: never notified
}

// ScopeView is the NFSv4 server scope this node's cld keeps on etcd.
type ScopeView struct {
	Name        string `json:"name"`
	Current     uint64 `json:"current_epoch"`
	Recovery    uint64 `json:"recovery_epoch"`
	Clients     int    `json:"current_clients"`
	Reclaimable int    `json:"recovery_clients"`
}

// InGrace reports whether the cluster is in a grace period.
func (v View) InGrace() bool { return v.Recovery != 0 }

// Quorum reports whether more than half the endpoints are healthy.
func (v View) Quorum() bool {
	n := 0
	for _, e := range v.Etcd {
		if e.Healthy {
			n++
		}
	}
	return 2*n > len(v.Etcd)
}
