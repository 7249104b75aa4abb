module example.com/budgetguard

go 1.24

require github.com/libcapmonster/capmonster-go v0.0.0

replace github.com/libcapmonster/capmonster-go => ../../../bindings/go
