package local

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// stat is what we use of /proc/<pid>/stat.
type stat struct {
	state     byte // R, S, D, Z, ...
	pgrp      int
	session   int
	startTime uint64 // field 22, clock ticks after boot
}

// readStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from its last ')'.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var s stat
	s.state = f[0][0]
	s.pgrp, _ = strconv.Atoi(f[5-3])
	s.session, _ = strconv.Atoi(f[6-3])
	s.startTime, err = strconv.ParseUint(f[22-3], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return s, nil
}

// alive: the pid exists, is the same process (start time), and is no zombie.
func alive(pid int, startTime uint64) bool {
	if pid <= 0 {
		return false
	}
	s, err := readStat(pid)
	return err == nil && s.state != 'Z' && s.state != 'X' && (startTime == 0 || s.startTime == startTime)
}

// proc is a process that carries an OCCOPUS_NODE_ID in its environment.
type proc struct {
	pid int
	stat
	env map[string]string // only the OCCOPUS_ variables
}

// leader: the process our Create started (it made its own session);
// its children inherit the environment but not the session leadership.
func (p proc) leader() bool { return p.session == p.pid && p.state != 'Z' }

func (p proc) record(logPath string) *record {
	return &record{
		PID: p.pid, StartTime: p.startTime, Address: p.env[EnvIP],
		InfraID: p.env[EnvInfraID], NodeID: p.env[EnvNodeID], NodeName: p.env[EnvNodeName], StoreID: p.env[EnvStoreID],
		Log: logPath,
	}
}

func readProc(pid int) (proc, error) {
	s, err := readStat(pid)
	if err != nil {
		return proc{}, err
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return proc{}, err
	}
	p := proc{pid: pid, stat: s, env: map[string]string{}}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if bytes.HasPrefix(kv, []byte("OCCOPUS_")) {
			k, v, _ := strings.Cut(string(kv), "=")
			p.env[k] = v
		}
	}
	return p, nil
}

// scanProc finds every process (readable to us) with OCCOPUS_NODE_ID in its
// environment: instances whose records were lost are found this way.
func scanProc() []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		p, err := readProc(pid)
		if err != nil || p.env[EnvNodeID] == "" {
			continue
		}
		out = append(out, p)
	}
	return out
}
