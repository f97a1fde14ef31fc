# Two commands for a fresh machine (Debian/Ubuntu, Python 3.11, no ROS):
#   make demo   - set up if needed, then run the shadowing demo on its defaults
#   make test   - set up if needed, then run every test
.PHONY: setup demo test bench checkpoints fuzz clean

setup:
	bash scripts/setup.sh

demo: setup
	bash -c '. scripts/env.sh && face-demo $(ARGS)'

test: setup
	bash scripts/setup_browser.sh
	bash scripts/test.sh $(ARGS)

# make checkpoints [ARGS='--seed 1 ...']: retrain the shipped checkpoints with the training
# pipeline (face-retarget-bootstrap --ship, ~35 min per robot); the only target that writes
# into src/face_retarget/checkpoints (face-retarget-train writes to out/train).
checkpoints: setup
	bash scripts/train_checkpoints.sh $(ARGS)

bench: setup
	bash scripts/bench.sh $(ARGS)

# make fuzz N=100000 [SEED=15]: N seeded inputs per fuzz target (fuzz/), a table of results.
fuzz: setup
	bash scripts/fuzz.sh --n $(or $(N),1000) $(if $(SEED),--seed $(SEED)) $(ARGS)

clean:
	rm -rf build install log .venv artifacts

# make soak: 1,000,000 hostile commands per robot through the safety layer at random tick
# spacing, every tick checked (ARGS='--commands N --robots NAME... --seed S')
# make bench-e2e [ARGS='--duration 60']: end-to-end latency the VividFace way, every model,
# idle / 50 % / 90 % CPU load, SCHED_FIFO and normal scheduling (about 14 min; 60 s repeats:
# the full protocol, about 95 min); out/bench/e2e/results.json
.PHONY: bench-e2e
bench-e2e: setup
	bash -c '. scripts/env.sh && python bench/e2e.py $(ARGS)'

.PHONY: soak
soak: setup
	bash -c '. scripts/env.sh && python bench/safety_soak.py $(ARGS)'
