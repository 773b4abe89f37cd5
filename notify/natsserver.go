package notify

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configures StartEmbeddedNATS. The zero value is not
// enough: StoreDir is required unless NoJetStream is set.
type EmbeddedOptions struct {
	// Host is the address the server listens on; default 127.0.0.1.
	Host string
	// Port is the client port; 0 picks a free port (the URL returned says
	// which). Give the port of a previous server to restart it in place.
	Port int
	// StoreDir holds JetStream's streams. A server restarted with the same
	// StoreDir finds its streams, messages and duplicate windows again.
	StoreDir string
	// NoJetStream starts a core-NATS-only server (StoreDir is then unused).
	NoJetStream bool
	// User and Password, or Token, make the server require them from
	// clients. Empty: no authentication (the server is local only by
	// default).
	User, Password, Token string
	// ReadyTimeout bounds the wait for the server to accept connections;
	// default 10s.
	ReadyTimeout time.Duration
}

// StartEmbeddedNATS starts the real NATS server (nats-server/v2) inside this
// process, with JetStream unless NoJetStream, no logging and no signal
// handlers, and waits until it accepts connections. It returns the server
// and its client URL (nats://host:port, without credentials). This is the
// embedded default of `trailsight run` when no external NATS is configured,
// and what the tests use.
//
// The caller owns the server: s.Shutdown() then s.WaitForShutdown() stop
// it and every goroutine it started.
func StartEmbeddedNATS(opt EmbeddedOptions) (*server.Server, string, error) {
	if !opt.NoJetStream && opt.StoreDir == "" {
		return nil, "", errors.New("notify: embedded nats: StoreDir is required with JetStream")
	}
	if opt.Token != "" && (opt.User != "" || opt.Password != "") {
		return nil, "", errors.New("notify: embedded nats: give User/Password or Token, not both")
	}
	sopt := &server.Options{
		ServerName:    "trailsight-embedded",
		Host:          opt.Host,
		Port:          opt.Port,
		NoLog:         true,
		NoSigs:        true,
		JetStream:     !opt.NoJetStream,
		StoreDir:      opt.StoreDir,
		Username:      opt.User,
		Password:      opt.Password,
		Authorization: opt.Token,
	}
	if sopt.Host == "" {
		sopt.Host = "127.0.0.1"
	}
	if sopt.Port == 0 {
		sopt.Port = server.RANDOM_PORT
	}
	ready := opt.ReadyTimeout
	if ready <= 0 {
		ready = 10 * time.Second
	}
	s, err := server.NewServer(sopt)
	if err != nil {
		return nil, "", fmt.Errorf("notify: embedded nats: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(ready) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, "", fmt.Errorf("notify: embedded nats on %s:%d: not ready after %v", sopt.Host, opt.Port, ready)
	}
	return s, s.ClientURL(), nil
}
