// Package natsserver runs a NATS server with JetStream inside the process:
// the embedded default of `certd all`, and the real server every test uses.
package natsserver

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config says where the embedded server keeps its data and listens.
type Config struct {
	// Dir holds JetStream's file store. Required.
	Dir string
	// Host and Port to listen on; Port 0 means the default 4222, -1 a random
	// free port. Host defaults to 127.0.0.1: the embedded server is for one
	// machine.
	Host string
	Port int
	// Name of the server (default "certd").
	Name string
	// Customize, if set, may change the options before the server starts
	// (clusters and gateways in tests).
	Customize func(*server.Options)
}

// Start starts the server and waits until it accepts clients.
func Start(cfg Config) (*server.Server, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("embedded nats: no data dir")
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		NoSigs:     true,
		NoLog:      true,
		// JetStream file store sync: let the OS flush; acks are still only
		// sent after the write reached the store.
		MaxPayload: 8 << 20,
	}
	if opts.ServerName == "" {
		opts.ServerName = "certd"
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if cfg.Customize != nil {
		cfg.Customize(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 30s")
	}
	return s, nil
}
