// Command pionturn is the interop lab's TURN server built on pion/turn v2 (Debian's
// golang-github-pion-turn.v2-dev). iceprobe's lab tests start it inside their own network
// namespace (tests/lab/interop.py); it is not meant for anything else.
//
// Credentials, tried in this order for each username:
//   - static users (-user name=password, repeatable);
//   - coturn's REST format (-rest-secret): username "<expiry>:<user>", password
//     base64(HMAC-SHA1(secret, username)), checked by this program;
//   - pion's own REST format (-pion-secret): username a bare expiry timestamp, checked by
//     pion's NewLongTermAuthHandler.
//
// Once every listener is open it prints one line starting with "ready" on stdout.
package main

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 8489 long-term credentials and the REST API use it
	"crypto/tls"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v2"
)

// userList collects repeated -user name=password flags.
type userList map[string]string

func (u userList) String() string { return fmt.Sprintf("%d users", len(u)) }

func (u userList) Set(value string) error {
	name, password, found := strings.Cut(value, "=")
	if !found || name == "" {
		return fmt.Errorf("want name=password, got %q", value)
	}
	u[name] = password
	return nil
}

type options struct {
	listen     string
	udpPort    int
	tcpPort    int
	tlsPort    int
	certFile   string
	keyFile    string
	realm      string
	relayIP    string
	minPort    int
	maxPort    int
	users      userList
	restSecret string
	pionSecret string
	logLevel   string
}

func parseOptions() (options, error) {
	opts := options{users: userList{}}
	flag.StringVar(&opts.listen, "listen", "127.0.0.1", "IP address to listen on")
	flag.IntVar(&opts.udpPort, "udp-port", 3478, "UDP listening port (0: no UDP listener)")
	flag.IntVar(&opts.tcpPort, "tcp-port", 0, "TCP listening port (0: none)")
	flag.IntVar(&opts.tlsPort, "tls-port", 0, "TLS listening port (0: none; needs -cert, -key)")
	flag.StringVar(&opts.certFile, "cert", "", "PEM certificate for the TLS listener")
	flag.StringVar(&opts.keyFile, "key", "", "PEM private key for the TLS listener")
	flag.StringVar(&opts.realm, "realm", "lab", "authentication realm")
	flag.StringVar(&opts.relayIP, "relay-ip", "", "relay address (default: the listen address)")
	flag.IntVar(&opts.minPort, "min-port", 50000, "first relay port")
	flag.IntVar(&opts.maxPort, "max-port", 50031, "last relay port")
	flag.Var(opts.users, "user", "a static user, name=password (repeatable)")
	flag.StringVar(&opts.restSecret, "rest-secret", "",
		"shared secret for coturn-format REST credentials (<expiry>:<user>)")
	flag.StringVar(&opts.pionSecret, "pion-secret", "",
		"shared secret for pion-format REST credentials (username = bare expiry)")
	flag.StringVar(&opts.logLevel, "log-level", "error", "pion log level: error, warn, info, debug, trace")
	flag.Parse()

	if net.ParseIP(opts.listen) == nil {
		return opts, fmt.Errorf("-listen: not an IP address: %q", opts.listen)
	}
	if opts.relayIP == "" {
		opts.relayIP = opts.listen
	}
	if net.ParseIP(opts.relayIP) == nil {
		return opts, fmt.Errorf("-relay-ip: not an IP address: %q", opts.relayIP)
	}
	if opts.minPort <= 0 || opts.maxPort > 65535 || opts.minPort > opts.maxPort {
		return opts, fmt.Errorf("bad relay port range %d-%d", opts.minPort, opts.maxPort)
	}
	if opts.tlsPort != 0 && (opts.certFile == "" || opts.keyFile == "") {
		return opts, fmt.Errorf("-tls-port needs -cert and -key")
	}
	if opts.udpPort == 0 && opts.tcpPort == 0 && opts.tlsPort == 0 {
		return opts, fmt.Errorf("no listener: give -udp-port, -tcp-port or -tls-port")
	}
	return opts, nil
}

func logLevel(name string) (logging.LogLevel, error) {
	levels := map[string]logging.LogLevel{
		"error": logging.LogLevelError, "warn": logging.LogLevelWarn,
		"info": logging.LogLevelInfo, "debug": logging.LogLevelDebug,
		"trace": logging.LogLevelTrace,
	}
	level, ok := levels[name]
	if !ok {
		return 0, fmt.Errorf("-log-level: unknown level %q", name)
	}
	return level, nil
}

// coturnRestKey checks a username in coturn's REST format, "<expiry>:<user>", whose
// password is base64(HMAC-SHA1(secret, username)); it returns the long-term key
// MD5(username:realm:password) (RFC 8489 section 9.2.2), or false.
func coturnRestKey(secret, username, realm string) ([]byte, bool) {
	expiry, _, found := strings.Cut(username, ":")
	if !found {
		return nil, false
	}
	seconds, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil || seconds < time.Now().Unix() {
		return nil, false
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	password := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return turn.GenerateAuthKey(username, realm, password), true
}

func authHandler(opts options, log logging.LeveledLogger) turn.AuthHandler {
	var pionFormat turn.AuthHandler
	if opts.pionSecret != "" {
		pionFormat = turn.NewLongTermAuthHandler(opts.pionSecret, log)
	}
	return func(username, realm string, src net.Addr) ([]byte, bool) {
		if password, ok := opts.users[username]; ok {
			return turn.GenerateAuthKey(username, realm, password), true
		}
		if opts.restSecret != "" {
			if key, ok := coturnRestKey(opts.restSecret, username, realm); ok {
				return key, true
			}
		}
		if pionFormat != nil {
			return pionFormat(username, realm, src)
		}
		return nil, false
	}
}

func run() error {
	opts, err := parseOptions()
	if err != nil {
		return err
	}
	level, err := logLevel(opts.logLevel)
	if err != nil {
		return err
	}
	loggers := logging.NewDefaultLoggerFactory()
	loggers.DefaultLogLevel = level
	loggers.Writer = os.Stderr

	relays := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorPortRange{
			RelayAddress: net.ParseIP(opts.relayIP),
			Address:      opts.relayIP,
			MinPort:      uint16(opts.minPort),
			MaxPort:      uint16(opts.maxPort),
		}
	}
	config := turn.ServerConfig{
		Realm:         opts.realm,
		AuthHandler:   authHandler(opts, loggers.NewLogger("auth")),
		LoggerFactory: loggers,
	}
	var listening []string
	if opts.udpPort != 0 {
		address := net.JoinHostPort(opts.listen, strconv.Itoa(opts.udpPort))
		conn, err := net.ListenPacket("udp", address)
		if err != nil {
			return fmt.Errorf("udp listener: %w", err)
		}
		config.PacketConnConfigs = append(config.PacketConnConfigs,
			turn.PacketConnConfig{PacketConn: conn, RelayAddressGenerator: relays()})
		listening = append(listening, "udp="+address)
	}
	if opts.tcpPort != 0 {
		address := net.JoinHostPort(opts.listen, strconv.Itoa(opts.tcpPort))
		listener, err := net.Listen("tcp", address)
		if err != nil {
			return fmt.Errorf("tcp listener: %w", err)
		}
		config.ListenerConfigs = append(config.ListenerConfigs,
			turn.ListenerConfig{Listener: listener, RelayAddressGenerator: relays()})
		listening = append(listening, "tcp="+address)
	}
	if opts.tlsPort != 0 {
		certificate, err := tls.LoadX509KeyPair(opts.certFile, opts.keyFile)
		if err != nil {
			return fmt.Errorf("tls certificate: %w", err)
		}
		address := net.JoinHostPort(opts.listen, strconv.Itoa(opts.tlsPort))
		listener, err := tls.Listen("tcp", address, &tls.Config{
			Certificates: []tls.Certificate{certificate},
			MinVersion:   tls.VersionTLS12,
		})
		if err != nil {
			return fmt.Errorf("tls listener: %w", err)
		}
		config.ListenerConfigs = append(config.ListenerConfigs,
			turn.ListenerConfig{Listener: listener, RelayAddressGenerator: relays()})
		listening = append(listening, "tls="+address)
	}

	server, err := turn.NewServer(config)
	if err != nil {
		return fmt.Errorf("starting the server: %w", err)
	}
	fmt.Printf("ready %s relay=%s:%d-%d\n", strings.Join(listening, " "), opts.relayIP,
		opts.minPort, opts.maxPort)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	return server.Close()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pionturn:", err)
		os.Exit(1)
	}
}
