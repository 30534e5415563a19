module fd2bench

go 1.19
