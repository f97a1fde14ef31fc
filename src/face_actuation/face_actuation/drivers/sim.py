"""The simulated driver: the robot's digital twin stands in for the hardware."""
from face_actuation.drivers import Driver
from face_actuation.twin import FaceTwin


class SimDriver(Driver):
    name = 'sim'

    def __init__(self, profile, config):
        super().__init__(profile, config)
        self.twin = FaceTwin(profile, seed=config.seed)
        self._command = self.twin.positions.copy()
        self.torque = True

    def read_positions(self):
        return self.twin.positions.copy()

    def write(self, positions) -> None:
        self._command = positions
        self.torque = True

    def limp(self) -> None:
        self.torque = False

    def advance(self, dt: float):
        """Move the simulated motors for dt seconds; a limp face sags toward rest (0.5 of the
        way to neutral per second, as skin pulls it)."""
        if self.torque:
            return self.twin.step(self._command, dt)
        sag = self.twin.positions + (self.twin.neutral - self.twin.positions) * min(1.0, dt)
        return self.twin.drift(sag, dt)
