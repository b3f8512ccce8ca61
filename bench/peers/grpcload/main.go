// grpcload: a closed-loop unary gRPC load generator for the peer benchmark.
//
// It sends one pre-serialized request (a file of protobuf bytes) over and over with a codec
// that passes bytes through, so the client does no protobuf work of its own: ghz builds
// dynamic messages per call and costs about as much CPU per request as the Python servers it
// would measure. `-c` workers share `-connections` HTTP/2 connections; each keeps one call in
// flight until `-duration` has passed, and every call it started is waited for, so none is
// cut off. Latencies are exact (every call recorded). Prints one JSON line.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// rawCodec sends and receives message bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = data
	return nil
}

func (rawCodec) Name() string { return "proto" }

type report struct {
	Requests int            `json:"requests"`
	Errors   int            `json:"errors"`
	Codes    map[string]int `json:"codes"`
	Seconds  float64        `json:"seconds"`
	P50us    float64        `json:"p50_us"`
	P99us    float64        `json:"p99_us"`
	MeanUs   float64        `json:"mean_us"`
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	if rank < 0 {
		rank = 0
	}
	return float64(sorted[rank].Microseconds())
}

func main() {
	addr := flag.String("addr", "", "host:port")
	method := flag.String("method", "/inference.GRPCInferenceService/ModelInfer", "full method")
	bodyPath := flag.String("body", "", "file holding the serialized request message")
	concurrency := flag.Int("c", 1, "calls in flight")
	connections := flag.Int("connections", 1, "HTTP/2 connections shared by the workers")
	duration := flag.Duration("duration", 2*time.Second, "how long workers start new calls")
	timeout := flag.Duration("timeout", 10*time.Second, "per call")
	procs := flag.Int("procs", 1, "OS threads running Go code (GOMAXPROCS)")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	body, err := os.ReadFile(*bodyPath)
	if err != nil || *addr == "" || *concurrency < 1 || *connections < 1 || *procs < 1 {
		fmt.Fprintln(os.Stderr, "usage: grpcload -addr HOST:PORT -body FILE [-c N] [-connections N] [-procs N] [-duration D]", err)
		os.Exit(2)
	}
	conns := make([]*grpc.ClientConn, *connections)
	for i := range conns {
		conns[i], err = grpc.NewClient(*addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}),
				grpc.MaxCallRecvMsgSize(1<<30)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		defer conns[i].Close()
	}
	latencies := make([][]time.Duration, *concurrency)
	codes := make([]map[string]int, *concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(*duration)
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			conn := conns[w%len(conns)]
			mine := make([]time.Duration, 0, 4096)
			errs := map[string]int{}
			for time.Now().Before(deadline) {
				var reply []byte
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				began := time.Now()
				err := conn.Invoke(ctx, *method, &body, &reply)
				took := time.Since(began)
				cancel()
				if err != nil {
					errs[status.Code(err).String()]++
					continue
				}
				mine = append(mine, took)
			}
			latencies[w], codes[w] = mine, errs
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	out := report{Codes: map[string]int{}, Seconds: elapsed.Seconds()}
	var total time.Duration
	for w := range latencies {
		all = append(all, latencies[w]...)
		for code, n := range codes[w] {
			out.Codes[code] += n
			out.Errors += n
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, d := range all {
		total += d
	}
	out.Requests = len(all)
	out.P50us, out.P99us = percentile(all, 50), percentile(all, 99)
	if len(all) > 0 {
		out.MeanUs = float64(total.Microseconds()) / float64(len(all))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
