module capmonster-bench-latency

go 1.22
