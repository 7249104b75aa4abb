module capmonster-bench

go 1.22
