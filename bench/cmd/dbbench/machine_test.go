package main

import (
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMachineNamesTheCPU(t *testing.T) {
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil || !strings.Contains(string(info), "model name") {
		t.Skip("no CPU model in /proc/cpuinfo here")
	}
	got := machine("postgres 15", []int{1})
	if strings.Contains(got, "unknown CPU") || !strings.Contains(got, " CPUs (") || !strings.Contains(got, "postgres 15") {
		t.Errorf("machine() = %q, want the CPU model, the CPU count and the server", got)
	}
}
