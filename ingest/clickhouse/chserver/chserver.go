package chserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cordonhq/cordon/internal/proc"
)

// DefaultConfigFile is where Debian's clickhouse-server package puts its
// configuration.
const DefaultConfigFile = "/etc/clickhouse-server/config.xml"

// Config configures a server.
type Config struct {
	// Bin is clickhouse-server (default: from PATH, or /usr/sbin).
	Bin string
	// ConfigFile is the base configuration (default DefaultConfigFile).
	ConfigFile string
	// Dir holds the data, temporary files and logs.
	Dir string
	// TCPPort (native protocol) and HTTPPort on 127.0.0.1; 0 picks free ports.
	TCPPort  int
	HTTPPort int
	// CertFile and KeyFile (PEM), when set, open the TLS native port
	// (TLSPort, 0 picks a free one) with that certificate.
	CertFile string
	KeyFile  string
	TLSPort  int
	// UsersFile replaces the package's users.xml (users, profiles and
	// quotas).
	UsersFile string
}

// Server is a running clickhouse-server.
type Server struct {
	cfg  Config
	proc *proc.Process
}

// Find returns the clickhouse-server binary and the base configuration, or
// an error saying how to install them.
func Find() (bin, config string, err error) {
	bin, err = exec.LookPath("clickhouse-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/clickhouse-server"); serr == nil {
			bin, err = "/usr/sbin/clickhouse-server", nil
		}
	}
	if err != nil {
		return "", "", errors.New("clickhouse-server not found: install Debian's package (apt-get install clickhouse-server clickhouse-client; make test does it)")
	}
	if _, err := os.Stat(DefaultConfigFile); err != nil {
		return "", "", fmt.Errorf("clickhouse-server is installed but %s is missing: reinstall the package", DefaultConfigFile)
	}
	return bin, DefaultConfigFile, nil
}

// Start starts the server and waits until it accepts native connections.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Bin == "" || cfg.ConfigFile == "" {
		bin, conf, err := Find()
		if err != nil {
			return nil, err
		}
		if cfg.Bin == "" {
			cfg.Bin = bin
		}
		if cfg.ConfigFile == "" {
			cfg.ConfigFile = conf
		}
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("chserver: %w", err)
		}
	}
	interPort := 0
	if err := proc.FreePorts(&cfg.TCPPort, &cfg.HTTPPort, &interPort); err != nil {
		return nil, fmt.Errorf("chserver: %w", err)
	}
	args := []string{"--config-file=" + cfg.ConfigFile, "--",
		"--tcp_port=" + strconv.Itoa(cfg.TCPPort), "--http_port=" + strconv.Itoa(cfg.HTTPPort),
		"--interserver_http_port=" + strconv.Itoa(interPort), "--listen_host=127.0.0.1",
		"--path=" + filepath.Join(dir, "data") + "/", "--tmp_path=" + filepath.Join(dir, "tmp") + "/",
		"--user_files_path=" + filepath.Join(dir, "user_files") + "/", "--format_schema_path=" + filepath.Join(dir, "format_schemas") + "/",
		"--logger.log=" + filepath.Join(dir, "logs", "server.log"), "--logger.errorlog=" + filepath.Join(dir, "logs", "error.log"),
		"--logger.level=warning",
		// A development server: small caches.
		"--mark_cache_size=268435456", "--uncompressed_cache_size=268435456"}
	if cfg.CertFile != "" {
		// The HTTPS port shares the certificate; it gets a free port too,
		// so that servers started side by side do not collide on it.
		httpsPort := 0
		if err := proc.FreePorts(&cfg.TLSPort, &httpsPort); err != nil {
			return nil, fmt.Errorf("chserver: %w", err)
		}
		cert, err := filepath.Abs(cfg.CertFile)
		if err != nil {
			return nil, err
		}
		key, err := filepath.Abs(cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		args = append(args, "--tcp_port_secure="+strconv.Itoa(cfg.TLSPort), "--https_port="+strconv.Itoa(httpsPort),
			"--openSSL.server.certificateFile="+cert, "--openSSL.server.privateKeyFile="+key,
			// No Diffie-Hellman parameters file: (EC)DHE key exchange needs none.
			"--openSSL.server.dhParamsFile=")
	}
	if cfg.UsersFile != "" {
		users, err := filepath.Abs(cfg.UsersFile)
		if err != nil {
			return nil, err
		}
		args = append(args, "--users_config="+users)
	}
	out, err := os.OpenFile(filepath.Join(dir, "logs", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("chserver: %w", err)
	}
	// The server outlives ctx (which bounds start-up only); Stop ends it.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), cfg.Bin, args...) //nolint:gosec // the system's clickhouse-server
	cmd.Stdout, cmd.Stderr = out, out
	p, err := proc.Start(cmd)
	if err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("chserver: %w", err)
	}
	go func() {
		<-p.Exited()
		_ = out.Close()
	}()
	s := &Server{cfg: cfg, proc: p}
	err = p.WaitReady(ctx, 60*time.Second, func() bool {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.Addr())
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("chserver: clickhouse-server: %w; see %s", err, filepath.Join(dir, "logs"))
	}
	return s, nil
}

// Addr is the native protocol address (host:port).
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.cfg.TCPPort) }

// TLSAddr is the TLS native protocol address (host:port), empty without
// Config.CertFile.
func (s *Server) TLSAddr() string {
	if s.cfg.CertFile == "" {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(s.cfg.TLSPort)
}

// HTTPAddr is the HTTP interface address.
func (s *Server) HTTPAddr() string { return "127.0.0.1:" + strconv.Itoa(s.cfg.HTTPPort) }

// Pid is the server's process id.
func (s *Server) Pid() int { return s.proc.Pid() }

// Stop stops the server (SIGTERM, then SIGKILL after 30 s) and waits.
func (s *Server) Stop() { s.proc.Stop(syscall.SIGTERM, 30*time.Second) }

// Kill stops the server abruptly, as a crash would.
func (s *Server) Kill() { s.proc.Kill() }
