// Command etcdnode runs one member of a multi-member etcd cluster as its own
// process (go.etcd.io/etcd/server/v3/embed), so that the fault-injection
// suite can kill, pause and restart etcd members one by one, as it would
// the members of a production etcd cluster.
//
//	etcdnode -name e1 -dir DIR -client http://127.0.0.1:P -peer http://127.0.0.1:Q \
//	         -initial-cluster e1=http://127.0.0.1:Q,e2=...,e3=...
//
// A restart with the same -dir rejoins the cluster with its data.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/regent-ha/regent/internal/etcdserver"
)

func main() {
	name := flag.String("name", "", "member name")
	dir := flag.String("dir", "", "data directory")
	client := flag.String("client", "", "client URL")
	peer := flag.String("peer", "", "peer URL")
	initial := flag.String("initial-cluster", "", "name=peerURL,... of every member")
	logFile := flag.String("log", "", "log file (default stderr, errors only)")
	flag.Parse()
	if *name == "" || *dir == "" || *client == "" || *peer == "" || *initial == "" {
		fmt.Fprintln(os.Stderr, "etcdnode: -name, -dir, -client, -peer and -initial-cluster are required")
		os.Exit(2)
	}
	cfg, err := etcdserver.Config(*dir, *client, *peer)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdnode:", err)
		os.Exit(2)
	}
	cfg.Name = *name
	cfg.InitialCluster = *initial
	cfg.InitialClusterToken = "regent-nemesis"
	if _, err := os.Stat(*dir + "/member"); err == nil {
		cfg.ClusterState = "existing"
	}
	if *logFile != "" {
		cfg.LogLevel = "warn"
		cfg.LogOutputs = []string{*logFile}
	}
	e, err := etcdserver.StartAndWait(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdnode: start:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcdnode:", err)
	}
	e.Close()
}
