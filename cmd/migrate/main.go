// Command migrate manages the schema of the database at the migration URL
// (DIRECT_URL, else DATABASE_URL) with the migrations built into it from
// store/migrations.
//
//	migrate up            apply every pending migration
//	migrate down          roll back the latest migration
//	migrate status        list the migrations and when each was applied
//	migrate version       print the schema version
//	migrate create NAME   add an empty migration to -dir
//
// It exits 0 on success, 1 when the command fails and 2 on bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/internal/dotenv"
	"github.com/fxpg/fxpg/store"
)

const usage = `usage: migrate [flags] up | down | status | version | create NAME

Runs over DIRECT_URL, else DATABASE_URL.

flags:
`

func main() {
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), usage)
		flag.PrintDefaults()
	}
	envFile := flag.String("env-file", ".env", "file of development variables to load if present; real variables win")
	dir := flag.String("dir", "store/migrations", "directory that create adds migrations to")
	timeout := flag.Duration("timeout", 10*time.Minute, "time allowed for the whole command, waiting for other migrators included")
	flag.Parse()
	switch command, args := flag.Arg(0), flag.NArg(); {
	case command == "create" && args == 2:
	case (command == "up" || command == "down" || command == "status" || command == "version") && args == 1:
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err := dotenv.Load(*envFile); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, os.Stdout, flag.Arg(0), flag.Arg(1), *dir); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, command, name, dir string) error {
	if command == "create" {
		p, err := migrate.Create(dir, name)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, "created", p, "(rebuild to include it)")
		return nil
	}
	cfg, err := config.LoadDB()
	if err != nil {
		return err
	}
	log, err := zap.NewDevelopment(zap.IncreaseLevel(zap.InfoLevel))
	if err != nil {
		return fmt.Errorf("build logger: %w", err)
	}
	defer log.Sync() //nolint:errcheck // stderr
	m, err := migrate.New(cfg, store.Migrations(), log)
	if err != nil {
		return err
	}
	defer m.Close()

	switch command {
	case "up":
		applied, err := m.Up(ctx)
		for _, r := range applied {
			fmt.Fprintf(out, "applied     %s (%s)\n", r.File, r.Duration.Round(time.Millisecond))
		}
		if err != nil {
			return err
		}
		return printVersion(ctx, out, m)
	case "down":
		r, err := m.Down(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "rolled back %s (%s)\n", r.File, r.Duration.Round(time.Millisecond))
		return printVersion(ctx, out, m)
	case "status":
		statuses, err := m.Status(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "VERSION\tMIGRATION\tSTATE\tAPPLIED AT")
		for _, s := range statuses {
			applied, file := "", s.File
			if !s.AppliedAt.IsZero() {
				applied = s.AppliedAt.UTC().Format(time.DateTime + " MST")
			}
			if file == "" {
				file = "-" // applied by a build with a file this one lacks
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", s.Version, file, s.State, applied)
		}
		return w.Flush()
	default: // version
		return printVersion(ctx, out, m)
	}
}

func printVersion(ctx context.Context, out io.Writer, m *migrate.Migrator) error {
	v, err := m.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "schema version", v)
	return nil
}
