package local

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ZooKeeper is a standalone ZooKeeper server started by a test.
type ZooKeeper struct {
	// URL is the coord backend URL of the server, e.g. "zk://127.0.0.1:PORT".
	URL string
	// Addr is the client address, "127.0.0.1:PORT".
	Addr string
	// Process is the server's JVM.
	Process *Process
	// DataDir holds the server's snapshots and transaction log.
	DataDir string
	// TLSURL is the zks:// URL of the TLS port, with ?ca= naming the CA that
	// signed the server's certificate (StartZooKeeperTLS only).
	TLSURL string
	// TLSAddr is the TLS client address (StartZooKeeperTLS only).
	TLSAddr string
	// CAFile is the PEM file of that CA (StartZooKeeperTLS only).
	CAFile string
}

// ZooKeeper's session timeout bounds for the local server. tickTime is 500ms,
// so sessions from 1s (the server's floor is 2 ticks) to 60s are granted as
// asked; the conformance suite uses 2s.
const (
	zkTickTime          = 500
	ZooKeeperMinSession = time.Second
	ZooKeeperMaxSession = 60 * time.Second
)

// zkJars is the classpath that runs ZooKeeperServerMain from the Debian
// packages (apt-get install zookeeper): zookeeper.jar's manifest lists its own
// dependencies (jute, netty, jackson, metrics, slf4j-api); it lacks only an
// slf4j binding, for which log4j 1.2 is used.
var zkJars = []string{
	"/usr/share/java/zookeeper.jar",
	"/usr/share/java/slf4j-log4j12.jar",
	"/usr/share/java/log4j-1.2.jar",
}

// ZooKeeperClasspathEnv overrides the jars (a ':'-separated Java classpath)
// used to run ZooKeeper.
const ZooKeeperClasspathEnv = "COORD_ZOOKEEPER_CLASSPATH"

// StartZooKeeper runs a standalone ZooKeeper (3.5 or later) on a free
// loopback port with a temporary data directory, waits until it answers the
// srvr four-letter command in standalone mode, and stops it when t ends. It
// skips t (or fails it under COORD_REQUIRE_ALL=1) when java or the ZooKeeper
// jars are missing.
func StartZooKeeper(t testing.TB) *ZooKeeper {
	t.Helper()
	return startZooKeeper(t, false)
}

// StartZooKeeperTLS is StartZooKeeper with a second, TLS client port
// (secureClientPort, Netty) serving a certificate for 127.0.0.1 signed by a
// throwaway CA: see the TLSURL, TLSAddr and CAFile fields.
func StartZooKeeperTLS(t testing.TB) *ZooKeeper {
	t.Helper()
	return startZooKeeper(t, true)
}

// zkTLSJars are what Netty's TLS needs beyond zookeeper.jar's manifest.
var zkTLSJars = []string{
	"/usr/share/java/netty-codec.jar",
	"/usr/share/java/netty-resolver.jar",
	"/usr/share/java/netty-transport-native-unix-common.jar",
}

func startZooKeeper(t testing.TB, withTLS bool) *ZooKeeper {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		Missing(t, "ZooKeeper (java)", "apt-get install zookeeper")
	}
	cp := os.Getenv(ZooKeeperClasspathEnv)
	if cp == "" {
		for _, j := range zkJars {
			if _, err := os.Stat(j); err != nil {
				Missing(t, "ZooKeeper ("+j+")", "apt-get install zookeeper")
			}
		}
		cp = strings.Join(zkJars, ":")
		if withTLS {
			for _, j := range zkTLSJars {
				if _, err := os.Stat(j); err == nil {
					cp += ":" + j
				}
			}
		}
	}
	dir := TempDir(t, "coord-zk-")
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatalf("zookeeper data dir: %v", err)
	}
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := fmt.Sprintf(`tickTime=%d
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
minSessionTimeout=%d
maxSessionTimeout=%d
maxClientCnxns=0
autopurge.purgeInterval=0
`, zkTickTime, data, port, ZooKeeperMinSession.Milliseconds(), ZooKeeperMaxSession.Milliseconds())
	zkServer := &ZooKeeper{URL: "zk://" + addr, Addr: addr, DataDir: data}
	var props []string
	if withTLS {
		tlsPort := FreePort(t)
		zkServer.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		ca, keyStore := writeTestPKI(t, dir)
		zkServer.CAFile = ca
		zkServer.TLSURL = "zks://" + zkServer.TLSAddr + "?ca=" + ca
		cfg += fmt.Sprintf("secureClientPort=%d\n", tlsPort)
		props = []string{
			"-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
			"-Dzookeeper.ssl.keyStore.location=" + keyStore,
			"-Dzookeeper.ssl.keyStore.type=PEM",
			"-Dzookeeper.ssl.trustStore.location=" + ca,
			"-Dzookeeper.ssl.trustStore.type=PEM",
			"-Dzookeeper.ssl.clientAuth=none",
		}
	}
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("zoo.cfg: %v", err)
	}
	const log4j = `log4j.rootLogger=WARN, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{1}: %m%n
# Per-connection noise: clients that omit the read-only flag, clients that hang up.
log4j.logger.org.apache.zookeeper.server.ZooKeeperServer=ERROR
log4j.logger.org.apache.zookeeper.server.NIOServerCnxn=ERROR
`
	if err := os.WriteFile(filepath.Join(dir, "log4j.properties"), []byte(log4j), 0o600); err != nil {
		t.Fatalf("log4j.properties: %v", err)
	}
	args := []string{
		// Small, quick-starting JVM: tests share a few cores.
		"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
		"-Dlog4j.configuration=file:" + filepath.Join(dir, "log4j.properties"),
		"-Dzookeeper.jmx.log4j.disable=true",
	}
	args = append(args, props...)
	args = append(args, "-cp", dir+":"+cp, "org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	ready := zkReady(addr)
	if withTLS {
		plain := ready
		ready = func(ctx context.Context) error {
			if err := plain(ctx); err != nil {
				return err
			}
			return DialReady(zkServer.TLSAddr)(ctx)
		}
	}
	zkServer.Process = Start(t, java, args, nil, ready, 60*time.Second)
	return zkServer
}

// zkReady succeeds once the server answers "srvr" as a serving standalone
// server.
func zkReady(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		out, err := FourLetter(ctx, addr, "srvr")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Mode: standalone") {
			return fmt.Errorf("srvr answered %q", out)
		}
		return nil
	}
}

// FourLetter sends a ZooKeeper four-letter command (srvr, ruok, cons, ...) to
// addr and returns the answer.
func FourLetter(ctx context.Context, addr, cmd string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if b.Len() > 0 {
				return b.String(), nil
			}
			return "", fmt.Errorf("%s: %w", cmd, err)
		}
	}
}
