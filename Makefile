# The README's two commands: `make run` and `make test`.
.PHONY: run test build kafka-start kafka-stop

# Runs the product on the embedded default (data in ~/.local/share/flexstream).
run:
	go run ./cmd/flexstream up

# Runs every test, with a real Apache Kafka broker beside kfake.
test:
	.ci/test-all

build:
	go install ./cmd/flexstream

# A real broker for manual experiments: prints its address.
kafka-start:
	deploy/kafka/kafka.sh start

kafka-stop:
	deploy/kafka/kafka.sh stop
