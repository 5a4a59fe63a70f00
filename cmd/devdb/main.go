// Command devdb runs a command against a throwaway PostgreSQL server. It
// starts one from the machine's PostgreSQL binaries (installing them first
// when run as root on Debian without them), runs the command with
// DATABASE_URL and DIRECT_URL pointing at it, and removes the server when the
// command exits, passing on its exit code:
//
//	devdb -- go run ./cmd/app
//
// SIGINT and SIGTERM go to the command; the server is removed after it exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/internal/pgtemp"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: devdb [-port N] -- command [args...]")
		flag.PrintDefaults()
	}
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 for the server; 0 picks a free one")
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	code, err := run(*port, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
	}
	os.Exit(code)
}

func run(port int, args []string) (int, error) {
	// Signals are for the command; devdb cleans up after it exits.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	srv, err := pgtemp.Start(context.Background(), pgtemp.Options{Port: port})
	if err != nil {
		return 1, fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer srv.Close()
	url := srv.URL("postgres")
	fmt.Fprintf(os.Stderr, "devdb: throwaway PostgreSQL at %s (data in %s, removed on exit)\n", config.RedactURL(url), srv.Dir())

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url, "DIRECT_URL="+url)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("run %s: %w", args[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			cmd.Process.Signal(sig) //nolint:errcheck // it may have exited
		case err := <-done:
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return exit.ExitCode(), nil
			}
			if err != nil {
				return 1, fmt.Errorf("run %s: %w", args[0], err)
			}
			return 0, nil
		}
	}
}
