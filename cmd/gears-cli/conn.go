package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// connOpts are the options every command has to reach the server.
type connOpts struct {
	host        string
	port        int
	user        string
	password    string
	passwordSet bool
	tls         bool
	cacert      string
	cert        string
	key         string
	sni         string
	insecure    bool
	verifyCA    bool // --ssl-verify-ca of the Python gears-cli; false means insecure
}

func newConnOpts() connOpts {
	return connOpts{host: "localhost", port: 6379, verifyCA: true}
}

func connOptions(c *connOpts) []option {
	password := stringOpt(&c.password, "TEXT", "Password (default: $REDISCLI_AUTH)", "--password")
	setPassword := password.set
	password.set = func(v string) error {
		c.passwordSet = true
		return setPassword(v)
	}
	opts := []option{
		stringOpt(&c.host, "TEXT", "Redis host to connect to  [default: localhost]", "--host"),
		intOpt(&c.port, "INTEGER", "Redis port to connect to  [default: 6379]", "--port"),
		stringOpt(&c.user, "TEXT", "ACL user (AUTH user password)", "--user"),
		password,
		flagOpt(&c.tls, "Connect with TLS", "--tls"),
		stringOpt(&c.cacert, "FILE", "CA certificates to verify the server with (implies --tls)", "--cacert"),
		stringOpt(&c.cert, "FILE", "Client certificate (implies --tls)", "--cert"),
		stringOpt(&c.key, "FILE", "Client certificate's private key (default: in --cert)", "--key"),
		stringOpt(&c.sni, "NAME", "Server name to ask for and verify (default: --host)", "--sni"),
		flagOpt(&c.insecure, "Do not verify the server's certificate (implies --tls)", "--insecure"),
	}
	// The Python gears-cli's spellings of the same, kept out of --help.
	for _, o := range []option{
		boolValueOpt(&c.tls, "", "--ssl"),
		stringOpt(&c.key, "FILE", "", "--ssl-keyfile"),
		stringOpt(&c.cert, "FILE", "", "--ssl-certfile"),
		stringOpt(&c.cacert, "FILE", "", "--ssl-ca-certs"),
		boolValueOpt(&c.verifyCA, "", "--ssl-verify-ca"),
	} {
		o.hidden = true
		opts = append(opts, o)
	}
	return opts
}

func (c *connOpts) validate() error {
	if c.key != "" && c.cert == "" {
		return usagef("Option '--key' needs '--cert'.")
	}
	if c.port < 0 || c.port > 65535 {
		return usagef("Invalid value for '--port': %d is not a port.", c.port)
	}
	return nil
}

func (c *connOpts) useTLS() bool {
	return c.tls || c.cacert != "" || c.cert != "" || c.sni != "" || c.insecure || !c.verifyCA
}

// tlsConfig is nil without TLS; its errors name the file at fault.
func (c *connOpts) tlsConfig() (*tls.Config, error) {
	if !c.useTLS() {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.sni,
		InsecureSkipVerify: c.insecure || !c.verifyCA, //nolint:gosec // asked for with --insecure
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.host
	}
	if c.cacert != "" {
		pem, err := os.ReadFile(c.cacert)
		if err != nil {
			return nil, readError(c.cacert, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot read %s: no PEM certificate in it", c.cacert)
		}
	}
	if c.cert != "" {
		key := c.key
		if key == "" {
			key = c.cert // one PEM file with both, as Python's ssl allows
		}
		pair, err := tls.LoadX509KeyPair(c.cert, key)
		if err != nil {
			return nil, fmt.Errorf("cannot load the client certificate %s: %w", c.cert, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// ctx has no deadline: a run() or a pip install takes as long as it takes.
var ctx = context.Background()

// quietLogger drops go-redis's own log lines: failures are reported once,
// by the command.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// connect opens one connection and checks it with PING. A command is never
// retried: RG.PYEXECUTE sent twice would run the function twice.
func (a *app) connect(c *connOpts, tlsCfg *tls.Config) (*redis.Client, error) {
	redis.SetLogger(quietLogger{})
	password := c.password
	if !c.passwordSet {
		password = a.getenv("REDISCLI_AUTH")
	}
	client := redis.NewClient(&redis.Options{
		Addr:            net.JoinHostPort(c.host, strconv.Itoa(c.port)),
		Username:        c.user,
		Password:        password,
		TLSConfig:       tlsCfg,
		Protocol:        2,
		DisableIdentity: true,
		MaxRetries:      -1,
		DialerRetries:   1,
		PoolSize:        1,
		DialTimeout:     5 * time.Second,
		// A run() or a pip install takes as long as it takes.
		ReadTimeout:              -1,
		WriteTimeout:             -1,
		ContextTimeoutEnabled:    true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		client.Close()
		return nil, err
	}
	return client, nil
}

// dial is connect with the command's messages: a TLS setup error is reported
// as it is, a connection error as the Python gears-cli does.
func (a *app) dial(p *printer, c *connOpts) (*redis.Client, int, bool) {
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, p.fail(err.Error()), false
	}
	client, err := a.connect(c, tlsCfg)
	if err != nil {
		return nil, p.fail(fmt.Sprintf("Cannot connect to Redis. Aborting (%v)", err)), false
	}
	return client, exitOK, true
}
