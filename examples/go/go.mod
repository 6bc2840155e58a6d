module example.com/arbiter-go-worker

go 1.19
