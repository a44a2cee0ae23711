"""The ``eemt-flow`` command line: thin click commands over the library."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from eemt_flow import __version__
from eemt_flow.cli_options import job_options, verbosity_options
from eemt_flow.errors import EXIT_USAGE, UserError
from eemt_flow.solar.parameters import parse_days
from eemt_flow.workflow.spec import build_spec, load_yaml


class _UserErrorAsUsage(click.ClickException):
    exit_code = EXIT_USAGE


class EemtGroup(click.Group):
    """Turns a :class:`UserError` anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise _UserErrorAsUsage(str(exc)) from None


def spec_from(jobfile: str | None, flags: dict):
    values = load_yaml(Path(jobfile)) if jobfile else {}
    values.update({k: v for k, v in flags.items() if v is not None})
    return build_spec(values)


@click.group(cls=EemtGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eemt-flow")
def cli():
    """Effective Energy and Mass Transfer for any DEM, on Makeflow + Work Queue."""


@cli.command()
@click.argument("jobfile", required=False, type=click.Path(dir_okay=False))
@job_options
@verbosity_options
def plan(jobfile, quiet, verbose, **flags):
    """Validate the job and write its work directory without running anything."""
    from eemt_flow.workflow.plan import plan as make_plan

    spec = spec_from(jobfile, flags)
    p = make_plan(spec)
    if not quiet:
        verb = "already planned" if p.resumed else "planned"
        click.echo(f"{verb}: {len(p.job['tiles'])} tile(s), {len(p.job['months'])} month(s), halo {p.job['halo_m']:g} m")
    click.echo(str(p.workdir / "workflow.mf"))


@cli.command()
@click.argument("jobfile", required=False, type=click.Path(dir_okay=False))
@job_options
@verbosity_options
def run(jobfile, quiet, verbose, **flags):
    """Plan, execute and reduce a job; re-running on the same work directory resumes."""
    from eemt_flow.workflow.execute import failed_tasks, makeflow_command, run_job

    spec = spec_from(jobfile, flags)

    def planned(p):
        if not quiet:
            click.echo(f"{'resuming' if p.resumed else 'planned'} {p.workdir}: {len(p.job['tiles'])} tile(s), "
                       f"{len(p.job['months'])} month(s), halo {p.job['halo_m']:g} m, executor {spec.executor}")
        if spec.executor == "wq" and not quiet:
            click.echo(f"Work Queue manager on port {spec.port}; start workers with: "
                       f"eemt-flow worker HOST:{spec.port} --password-file FILE, or as batch jobs with: "
                       f"eemt-flow workers --batch slurm --max N HOST:{spec.port} --password-file FILE")
        if verbose:
            click.echo("$ " + " ".join(makeflow_command(spec, p.workdir)))

    with _progress_bar(quiet) as on_progress:
        p, progress = run_job(spec, on_planned=planned, on_progress=on_progress)
    if progress.state != "complete":
        click.echo(f"Error: workflow {progress.state} ({progress.done}/{progress.total} tasks done); "
                   f"see {p.workdir / 'logs' / 'makeflow.out'}; run the same command again to resume", err=True)
        for failed in failed_tasks(p.workdir):
            click.echo(f"task failed ({failed.exit}): {failed.command}", err=True)
            if failed.message:
                click.echo(f"  {failed.message}", err=True)
            if failed.log is not None:
                click.echo(f"  its log, {failed.log}:", err=True)
                for line in failed.log_tail():
                    click.echo(f"  | {line}", err=True)
        sys.exit(1)
    paths = ["results/summary.json", "results/glob_rad_quicklook.png", "results/solar/monthly"]
    if p.job.get("eemt"):
        paths.append("results/eemt")
    for path in paths:
        click.echo(str(p.workdir / path))


@contextlib.contextmanager
def _progress_bar(quiet):
    """A rich progress bar (tasks done/total, elapsed, ETA) fed from the Makeflow log."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("starting", total=None)

        def update(pr):
            bar.update(task, completed=pr.done, total=pr.total, description=pr.state)

        yield update


@cli.command()
@click.argument("workdir", type=click.Path(exists=True, file_okay=False))
def status(workdir):
    """Print the progress of the job in WORKDIR."""
    from eemt_flow.workflow.execute import read_progress

    if not (Path(workdir) / "job.json").exists():
        raise UserError(f"{workdir} is not an eemt-flow work directory (no job.json)")
    pr = read_progress(Path(workdir))
    click.echo(pr.line())
    if pr.state == "complete":
        click.echo(str(Path(workdir).resolve() / "results"))


@cli.command()
@click.argument("manager")
@click.option("--cores", type=int, help="Cores this worker offers. [default: all]")
@click.option("--password-file", type=click.Path(path_type=str), help="Work Queue password file (or $EEMT_WQ_PASSWORD_FILE).")
@click.option("--idle-timeout", "idle_timeout_s", type=int, default=900, show_default=True,
              help="Exit after this many idle seconds.")
@click.option("--workdir", type=click.Path(file_okay=False), help="Worker scratch directory.")
@click.option("--exit-on-disconnect", is_flag=True,
              help="Exit when the manager goes away, for a supervisor (a container's restart policy) to start a "
                   "new worker that looks the manager's address up again.")
def worker(manager, cores, password_file, idle_timeout_s, workdir, exit_on_disconnect):
    """Start a Work Queue worker that joins the manager at MANAGER (HOST:PORT)."""
    from eemt_flow.workflow.execute import PASSWORD_FILE_ENV, task_environment, worker_command

    password_file = password_file or os.environ.get(PASSWORD_FILE_ENV)
    if not password_file or not Path(password_file).is_file():
        raise UserError(f"give --password-file FILE (or ${PASSWORD_FILE_ENV}) with the manager's Work Queue password")
    cmd = worker_command(manager, cores=cores, password_path=Path(password_file), idle_timeout_s=idle_timeout_s,
                         workdir=Path(workdir) if workdir else None, exit_on_disconnect=exit_on_disconnect)
    os.execvpe(cmd[0], cmd, task_environment())


@cli.command()
@click.argument("manager")
@click.option("--batch", "batch_system", type=click.Choice(["slurm", "condor", "sge"]), required=True,
              help="Batch system the workers are submitted to.")
@click.option("--max", "max_workers", type=int, required=True, help="Most workers at once (batch jobs).")
@click.option("--cores", type=int, default=1, show_default=True, help="Cores per worker (requested from the batch system).")
@click.option("--memory", "memory_mb", type=int, default=4000, show_default=True,
              help="Memory per worker in MB (requested from the batch system).")
@click.option("--idle-timeout", "idle_timeout_s", type=int, default=300, show_default=True,
              help="A worker exits after this many idle seconds.")
@click.option("--password-file", type=click.Path(path_type=str), help="Work Queue password file (or $EEMT_WQ_PASSWORD_FILE).")
@click.option("--batch-options", help="Added to every worker submission (e.g. '--partition=normal --time=04:00:00').")
@click.option("--scratch-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the factory keeps the worker binary and the password copy the batch jobs start from; "
                   "must be visible to the compute nodes. [default: ~/.cache/eemt-flow/wq-factory/HOST-PORT]")
def workers(manager, batch_system, max_workers, cores, memory_mb, idle_timeout_s, password_file, batch_options,
            scratch_dir):
    """Keep up to --max Work Queue workers running as batch jobs while the manager at MANAGER
    (HOST:PORT) has tasks; idle workers exit. Runs CCTools' work_queue_factory until stopped."""
    from eemt_flow.workflow.execute import PASSWORD_FILE_ENV, factory_command, factory_environment

    password_file = password_file or os.environ.get(PASSWORD_FILE_ENV)
    if not password_file or not Path(password_file).is_file():
        raise UserError(f"give --password-file FILE (or ${PASSWORD_FILE_ENV}) with the manager's Work Queue password")
    for name, value in (("--max", max_workers), ("--cores", cores), ("--memory", memory_mb),
                        ("--idle-timeout", idle_timeout_s)):
        if value < 1:
            raise UserError(f"{name} must be at least 1 (got {value})")
    cmd, scratch = factory_command(manager, batch_system=batch_system, max_workers=max_workers, cores=cores,
                                   memory_mb=memory_mb, idle_timeout_s=idle_timeout_s,
                                   password_path=Path(password_file), batch_options=batch_options,
                                   scratch_dir=scratch_dir)
    os.chdir(scratch)
    os.execvpe(cmd[0], cmd, factory_environment(batch_system, scratch))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes the service.")
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("eemt-data"),
              show_default=True, help="Job database and work directories (uploads/, results/, temp/, cache/).")
@click.option("--max-concurrent-jobs", type=int, default=1, show_default=True, help="Jobs running at once.")
@click.option("--executor", type=click.Choice(["local", "wq"]), default="local", show_default=True)
@click.option("--wq-port", type=int, default=9123, show_default=True, help="Work Queue manager port (--executor wq).")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Work Queue password file (or $EEMT_WQ_PASSWORD_FILE).")
@click.option("--max-upload-mb", type=int, default=512, show_default=True)
@click.option("--keep-succeeded-days", type=float, default=30.0, show_default=True,
              help="Remove work directories of succeeded jobs older than this.")
@click.option("--keep-failed-days", type=float, default=7.0, show_default=True,
              help="Remove work directories of failed or cancelled jobs older than this.")
@click.option("--expected-workers", type=int, default=0, show_default=True,
              help="Work Queue workers you run for this service (--executor wq); /metrics reports it, and the "
                   "monitoring alert fires when fewer are connected while a job runs. 0: no such alert.")
def serve(host, port, data_dir, max_concurrent_jobs, executor, wq_port, password_file, max_upload_mb,
          keep_succeeded_days, keep_failed_days, expected_workers):
    """Run the web interface and REST API (API token from $EEMT_API_TOKEN)."""
    from eemt_flow.web.server import serve as serve_web

    serve_web(host=host, port=port, data_dir=data_dir, max_concurrent_jobs=max_concurrent_jobs, executor=executor,
              wq_port=wq_port, password_file=password_file, max_upload_mb=max_upload_mb,
              keep_succeeded_days=keep_succeeded_days, keep_failed_days=keep_failed_days,
              expected_workers=expected_workers)


@cli.command("example-dem")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--size", "size_cells", type=int, default=120, show_default=True, help="Cells per side.")
@click.option("--cell-size", "cell_size_m", type=float, default=30.0, show_default=True, help="Cell size in metres.")
def example_dem(output, size_cells, cell_size_m):
    """Write the built-in synthetic example DEM (UTM 13N, steep ridges, a nodata corner)."""
    from eemt_flow.dem.example import write_example_dem

    write_example_dem(Path(output), size_cells=size_cells, cell_size_m=cell_size_m)
    click.echo(output)


@cli.group()
def task():
    """Task entry points called by the Makeflow rules."""
    from eemt_flow.workflow.tasks import TASK_GDAL_CACHE_MB

    # a task reads each block of its tile once: GDAL's default cache (5 % of the machine's
    # memory) would only hold copies, and count against the task's declared memory
    os.environ.setdefault("GDAL_CACHEMAX", str(TASK_GDAL_CACHE_MB))


@task.command("cut-dem")
@click.option("--job", "job_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--tile", "tile_name", required=True)
def task_cut_dem(job_file, tile_name):
    from eemt_flow.workflow.tasks import cut_dem_task

    cut_dem_task(Path(job_file), tile_name)


@task.command("max-pyramid")
@click.option("--job", "job_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--region", required=True, help="ROW,COL of the region in the DEM's grid of pyramid regions")
def task_max_pyramid(job_file, region):
    from eemt_flow.workflow.tasks import pyramid_task

    try:
        i, j = (int(v) for v in region.split(","))
    except ValueError:
        raise click.BadParameter(f"{region!r}: give the region as ROW,COL, e.g. 0,1", param_hint="--region") from None
    pyramid_task(Path(job_file), (i, j))


@task.command("terrain-stage")
@click.option("--job", "job_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--stage", required=True)
@click.option("--tiles", type=str, default=None,
              help="A block of terrain tiles: ROW0:ROW1,COL0:COL1 (half-open ranges of the terrain grid).")
@click.option("--group", type=str, default=None, help="An exchange group: LEVEL,ROW,COL.")
def task_terrain_stage(job_file, stage, tiles, group):
    from eemt_flow.workflow.tasks import terrain_stage_task

    block = None
    if tiles:
        rows, cols = tiles.split(",")
        block = tuple(int(v) for part in (rows, cols) for v in part.split(":"))
    terrain_stage_task(Path(job_file), stage, block, tuple(int(v) for v in group.split(",")) if group else None)


@task.command("terrain")
@click.option("--dem", required=True, type=click.Path(exists=True))
@click.option("--terrain-out", required=True)
@click.option("--horizons-out", required=True)
@click.option("--search-distance-m", required=True, type=float)
@click.option("--horizon-step-deg", required=True, type=float)
@click.option("--sky-view-out", default=None, help="Also write the window's sky view factor here.")
def task_terrain(dem, terrain_out, horizons_out, search_distance_m, horizon_step_deg, sky_view_out):
    from eemt_flow.workflow.tasks import terrain_task

    terrain_task(Path(dem), Path(terrain_out), Path(horizons_out), search_distance_m=search_distance_m,
                 horizon_step_deg=horizon_step_deg, sky_view_out=Path(sky_view_out) if sky_view_out else None)


@task.command("solar")
@click.option("--dem", required=True, type=click.Path(exists=True))
@click.option("--terrain", required=True, type=click.Path(exists=True))
@click.option("--horizons", required=True, type=click.Path(exists=True))
@click.option("--days", required=True)
@click.option("--step-minutes", required=True, type=float)
@click.option("--linke", required=True, type=float)
@click.option("--albedo", required=True, type=float)
@click.option("--horizon-step-deg", required=True, type=float)
@click.option("--out", required=True)
@click.option("--daily-out")
def task_solar(dem, terrain, horizons, days, step_minutes, linke, albedo, horizon_step_deg, out, daily_out):
    from eemt_flow.workflow.tasks import solar_task

    solar_task(Path(dem), Path(terrain), Path(horizons), parse_days(days), step_minutes=step_minutes, linke=linke,
               albedo=albedo, horizon_step_deg=horizon_step_deg, out=Path(out),
               daily_out=Path(daily_out) if daily_out else None)


@task.command("solar-fast")
@click.option("--job", "job_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--tile", "tile_name", required=True)
def task_solar_fast(job_file, tile_name):
    from eemt_flow.workflow.tasks import solar_fast_task

    solar_fast_task(Path(job_file), tile_name)


@task.command("eemt")
@click.option("--job", "job_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--tile", "tile_name", required=True)
@click.option("--year", required=True)
def task_eemt(job_file, tile_name, year):
    from eemt_flow.workflow.tasks import eemt_task

    eemt_task(Path(job_file), tile_name, year)


@task.command("reduce-maps")
@click.option("--job", "job_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--group", "group", required=True,
              help="The map group to write (eemt_flow.workflow.reduce.map_groups); the VRT form's level 0: a family, comma-separated.")
@click.option("--block", help="The VRT form: the block to write (L0_r000_c000 from the tiles, L1_... from the level below).")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Threads that compress the COGs (the rule's declared CORES).")
def task_reduce_maps(job_file, group, block, threads):
    from eemt_flow.workflow.reduce import reduce_groups

    reduce_groups(Path(job_file).resolve().parent, group.split(","), threads, block)


@task.command("reduce")
@click.option("--job", "job_file", required=True, type=click.Path(exists=True, dir_okay=False))
def task_reduce(job_file):
    from eemt_flow.workflow.reduce import reduce_job

    reduce_job(Path(job_file).resolve().parent)


def main():
    cli(prog_name="eemt-flow")


if __name__ == "__main__":
    main()
