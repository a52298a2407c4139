// A fast loopback service for bench/load_scaling.py: it answers every POST after a fixed
// service time, as a warm inference function would, and keeps its own latencies, so the
// bench can compare what a gate measured with what the server saw.
//
//	go run ./bench/fastserver -addr 127.0.0.1:0 -delay 50ms
//
// It prints its address on the first line. GET /_stats returns the count and p50/p95/p99
// (ms) of the requests answered since the last POST /_reset.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

type recorder struct {
	mu        sync.Mutex
	latencies []float64
}

func (r *recorder) add(ms float64) {
	r.mu.Lock()
	r.latencies = append(r.latencies, ms)
	r.mu.Unlock()
}

func (r *recorder) snapshot(reset bool) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]float64(nil), r.latencies...)
	if reset {
		r.latencies = r.latencies[:0]
	}
	return out
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := q / 100 * float64(len(sorted)-1)
	low := int(rank)
	if low+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[low] + (rank-float64(low))*(sorted[low+1]-sorted[low])
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	delay := flag.Duration("delay", 50*time.Millisecond, "service time of each request")
	flag.Parse()

	rec := &recorder{}
	body := []byte(`{"predictions":[{"label":"setosa","class":0}]}`)
	mux := http.NewServeMux()
	mux.HandleFunc("/_stats", func(w http.ResponseWriter, _ *http.Request) {
		got := rec.snapshot(false)
		sort.Float64s(got)
		_ = json.NewEncoder(w).Encode(map[string]float64{
			"count": float64(len(got)), "p50_ms": percentile(got, 50),
			"p95_ms": percentile(got, 95), "p99_ms": percentile(got, 99),
		})
	})
	mux.HandleFunc("/_reset", func(w http.ResponseWriter, _ *http.Request) {
		rec.snapshot(true)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(*delay)
		w.Header().Set("content-type", "application/json")
		w.Header().Set("x-function-version", "1")
		_, _ = w.Write(body)
		rec.add(float64(time.Since(start).Microseconds()) / 1000)
	})

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(listener.Addr().String())
	if err := http.Serve(listener, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
