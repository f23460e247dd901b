"""A throw-away one-node SLURM cluster on localhost, for the tests (and by hand: `python tests/slurm_cluster.py`).

Starts munged (if no munge daemon answers yet), slurmctld and slurmd from the installed Debian packages, with a
fresh slurm.conf, state and spool folders under one temporary folder and free TCP ports, so it never touches
/etc/slurm nor a SLURM already running here. Clients find it through `SLURM_CONF`. The node advertises two fake
GPUs (a GRES whose "device files" are /dev/null and /dev/zero) so that `--gres=gpu:2` jobs are scheduled and get
`SLURM_GPUS_ON_NODE=2`. Daemons are stopped by the PIDs in their pid files, never by name.

Where the cgroup v1 hierarchies are mounted and writable (as on this machine kind: Debian 12 in a container,
no systemd), jobs are tracked and confined like on a production cluster: proctrack/cgroup, task/cgroup with
ConstrainCores (a 1-CPU job sees one core). Elsewhere it falls back to proctrack/linuxproc and task/none
(`DLM_SLURM_CGROUPS=0` or `1` forces the choice).
SLURM 22.05 refuses `CgroupPlugin=disabled` (unknown), so a cgroup.conf is written only with `cgroup/v1`.
"""
from __future__ import annotations
import os, shutil, signal, socket, subprocess, tempfile, time
from pathlib import Path

DAEMONS = ('munged', 'slurmctld', 'slurmd')
SLURM_CONF = """\
ClusterName=dlmtest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType={proctrack}
TaskPlugin={task}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SwitchType=switch/none
SlurmdParameters=config_overrides
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0
AuthInfo=cred_expire=10
KillWait=30
MinJobAge=3600
GresTypes=gpu
NodeName=localhost CPUs={cpus} RealMemory=4000 Gres=gpu:{gpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
# slurmd insists that a GPU's File be a character device; /dev/null, /dev/zero, ... stand in for them
# (TaskPlugin=task/none never touches them; jobs see CUDA_VISIBLE_DEVICES=0,1 and SLURM_GPUS_ON_NODE).
FAKE_GPU_DEVICES = ('/dev/null', '/dev/zero', '/dev/full', '/dev/urandom')
CGROUP_CONF = 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\nConstrainCores=yes\n'
CGROUP_V1 = Path('/sys/fs/cgroup')


def cgroup_v1_usable() -> bool:
    "Are the cgroup v1 hierarchies SLURM's cgroup plugins use (freezer, cpuset, memory) mounted and writable here?"
    return all((CGROUP_V1 / c / 'tasks').exists() and os.access(CGROUP_V1 / c, os.W_OK) for c in ('freezer', 'cpuset', 'memory'))


def missing_programs() -> list[str]:
    "The SLURM/munge programs that are not installed here."
    progs = ['munged', 'munge', 'unmunge', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'sinfo']
    return [p for p in progs if shutil.which(p) is None and not Path('/usr/sbin', p).exists()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def _pid(path: Path) -> int | None:
    try: return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError): return None


def _alive(pid: int | None) -> bool:
    if not pid: return False
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    return True


def munge_works() -> bool:
    "Does a munge daemon answer (a credential encodes and decodes)?"
    try:
        enc = _run(['munge', '-n'])
        return enc.returncode == 0 and _run(['unmunge'], input=enc.stdout).returncode == 0
    except (OSError, subprocess.TimeoutExpired): return False


class LocalSlurm:
    "A one-node SLURM cluster on localhost under `root` (a fresh temporary folder by default)."
    def __init__(self, root=None, cpus: int = 4, gpus: int = 2, cgroups: bool | None = None):
        if gpus > len(FAKE_GPU_DEVICES): raise ValueError(f'at most {len(FAKE_GPU_DEVICES)} fake GPUs')
        self.root = Path(root or tempfile.mkdtemp(prefix='dlm-slurm-'))
        self.cpus, self.gpus, self.conf = cpus, gpus, self.root / 'slurm.conf'
        if cgroups is None and os.environ.get('DLM_SLURM_CGROUPS') in ('0', '1'): cgroups = os.environ['DLM_SLURM_CGROUPS'] == '1'
        self.cgroups = cgroup_v1_usable() if cgroups is None else cgroups
        self.pids: dict[str, int] = {}
        self.env = {**os.environ, 'SLURM_CONF': str(self.conf)}

    def _log_tail(self) -> str:
        return '\n'.join(f'--- {n}:\n' + (self.root / n).read_text()[-3000:]
                         for n in ('slurmctld.log', 'slurmd.log') if (self.root / n).exists())

    def _start_munge(self):
        if munge_works(): return                       # somebody else's munged: use it, leave it running
        run = Path('/run/munge'); run.mkdir(parents=True, exist_ok=True)
        shutil.chown(run, 'munge', 'munge')
        r = _run(['su', '-s', '/bin/sh', 'munge', '-c', '/usr/sbin/munged'])
        if r.returncode: raise RuntimeError(f'munged did not start ({r.returncode}): {r.stderr.strip()}')
        for _ in range(50):
            if munge_works(): break
            time.sleep(0.1)
        else: raise RuntimeError('munged started but `munge -n | unmunge` fails')
        self.pids['munged'] = _pid(run / 'munged.pid')

    def start(self, timeout: float = 60) -> 'LocalSlurm':
        "Write the configuration, start the daemons, wait until the node is idle."
        if os.geteuid() != 0: raise PermissionError('a local SLURM cluster needs root (slurmd launches jobs, munged runs as munge)')
        for sub in ('state', 'spool'): (self.root / sub).mkdir(parents=True, exist_ok=True)
        plugins = dict(proctrack='proctrack/cgroup', task='task/cgroup') if self.cgroups else \
                  dict(proctrack='proctrack/linuxproc', task='task/none')
        self.conf.write_text(SLURM_CONF.format(d=self.root, cpus=self.cpus, gpus=self.gpus, **plugins,
                                               ctld_port=_free_port(), d_port=_free_port()))
        if self.cgroups: (self.root / 'cgroup.conf').write_text(CGROUP_CONF)
        (self.root / 'gres.conf').write_text(''.join(f'NodeName=localhost Name=gpu File={f}\n' for f in FAKE_GPU_DEVICES[:self.gpus]))
        try:
            self._start_munge()
            for name, cmd in (('slurmctld', ['slurmctld', '-f', str(self.conf), '-i']),
                              ('slurmd', ['slurmd', '-f', str(self.conf), '-N', 'localhost'])):
                r = _run(cmd, env=self.env)
                if r.returncode: raise RuntimeError(f'{name} did not start ({r.returncode}): {r.stderr.strip()}\n{self._log_tail()}')
                for _ in range(50):
                    if _alive(pid := _pid(self.root / f'{name}.pid')): self.pids[name] = pid; break
                    time.sleep(0.1)
                else: raise RuntimeError(f'{name} wrote no pid file\n{self._log_tail()}')
            self.wait_idle(timeout)
        except BaseException:
            self.stop(); raise
        return self

    def wait_idle(self, timeout: float = 60):
        "Wait until `sinfo` shows the node idle."
        t0, out = time.time(), ''
        while time.time() - t0 < timeout:
            out = _run(['sinfo', '-h', '-N', '-o', '%N %t'], env=self.env).stdout.strip()
            if out.endswith('idle'): return
            if out.endswith(('inval', 'drain', 'drng', 'down')): break
            time.sleep(0.3)
        raise RuntimeError(f'the node did not become idle (sinfo: {out!r})\n{self._log_tail()}')

    def cancel_jobs(self, timeout: float = 45):
        "Cancel every job of this cluster (a failed test may leave some running) and wait until none is left."
        ids = lambda: _run(['squeue', '-h', '-o', '%i'], env=self.env).stdout.split()
        try:
            if not (left := ids()): return
            _run(['scancel', *left], env=self.env)
            t0 = time.time()
            while ids() and time.time() - t0 < timeout: time.sleep(0.5)
        except (OSError, subprocess.TimeoutExpired): pass

    def stop(self, timeout: float = 20):
        "Cancel the jobs left, then stop the daemons this object started, by PID: slurmd, slurmctld, then munged."
        if _alive(self.pids.get('slurmctld')) and _alive(self.pids.get('slurmd')): self.cancel_jobs()
        for name in ('slurmd', 'slurmctld', 'munged'):
            pid = self.pids.pop(name, None)
            if not _alive(pid): continue
            os.kill(pid, signal.SIGTERM)
            t0 = time.time()
            while _alive(pid) and time.time() - t0 < timeout: time.sleep(0.1)
            if _alive(pid): os.kill(pid, signal.SIGKILL)
        if self.cgroups: self._remove_cgroups()

    def _remove_cgroups(self):
        "Remove the (empty) cgroups slurmd left under slurm_localhost/; a cgroup that still holds a process stays."
        for c in ('freezer', 'cpuset', 'memory'):
            top = CGROUP_V1 / c / 'slurm_localhost'
            if not top.is_dir(): continue
            for d in sorted((p for p in top.rglob('*') if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
                try: d.rmdir()
                except OSError: pass

    def __enter__(self): return self.start()
    def __exit__(self, *exc): self.stop()


if __name__ == '__main__':
    import sys
    c = LocalSlurm(sys.argv[1] if len(sys.argv) > 1 else None).start()
    print(f'export SLURM_CONF={c.conf}   # pids: {c.pids}; stop with: kill {" ".join(map(str, c.pids.values()))}')
