package main

type evalCmd struct{}
