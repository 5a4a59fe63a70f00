// Package httpserver provides the service's HTTP server to an fx app, with
// the two probes an orchestrator needs: /healthz (liveness, which touches
// nothing) and /readyz (readiness, which runs every Check). Other packages add
// routes and checks through value groups, with AsRoute and AsCheck.
package httpserver
