from shared.settings import ServiceSettings


class CaseSettings(ServiceSettings):
    relay_batch_size: int = 5000
