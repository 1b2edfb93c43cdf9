# Installs Contoso Notes from its setup EXE, silently; running it again changes nothing.
# The setup starts the application when it finishes, so this waits for the setup process itself
# (never for everything it started, as Start-Process -Wait would) and for at most 15 minutes.
# SSM_LICENSE_SERVER (additionalArguments) is checked to be a host name, then passed quoted.
# Exit codes: 0 and 3010 installed (a restart is left to the user), 1641 restart started (3010
# for SSM Agent), 1618 another installation is running (retried for 5 minutes, then returned),
# 1460 the setup did not finish in time, 87 a bad argument; anything else is the setup's failure.
# Logs: %ProgramData%\fleet-controller\logs\ContosoNotes-install.log
$ErrorActionPreference = 'Stop'
$Version = '8.1.4'
$Attempts = 10
$DelaySeconds = 30
$SetupTimeoutSeconds = 900
$UninstallKey = 'SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\ContosoNotes'
$LogFolder = Join-Path $env:ProgramData 'fleet-controller\logs'
$Log = Join-Path $LogFolder 'ContosoNotes-install.log'
New-Item -ItemType Directory -Force -Path $LogFolder | Out-Null

function Write-Log([string]$Message) {
    Add-Content -LiteralPath $Log -Value ('{0} {1}' -f (Get-Date).ToString('u'), $Message) -Encoding UTF8
}

function Get-InstalledVersion {
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, [Microsoft.Win32.RegistryView]::Registry32)
    try {
        $key = $base.OpenSubKey($UninstallKey)
        if ($null -eq $key) { return '' }
        try {
            return [string]$key.GetValue('DisplayVersion', '')
        } finally {
            $key.Close()
        }
    } finally {
        $base.Close()
    }
}

$installed = Get-InstalledVersion
$binary = Join-Path ${env:ProgramFiles(x86)} 'Contoso\Notes\notes.exe'
if ($installed -eq $Version -and [System.IO.File]::Exists($binary)) {
    Write-Log "Contoso Notes $Version is already installed"
    exit 0
}
$arguments = '/S'
$server = $env:SSM_LICENSE_SERVER
if ($server) {
    if ($server -notmatch '\A[A-Za-z0-9][A-Za-z0-9.\-]{0,252}(:[0-9]{1,5})?\z') {
        Write-Log 'SSM_LICENSE_SERVER is not a host name (with an optional port); nothing was installed'
        exit 87
    }
    $arguments = '/S /LICENSESERVER="{0}"' -f $server
}
$setup = Join-Path $PSScriptRoot 'ContosoNotesSetup.exe'
for ($attempt = 1; $attempt -le $Attempts; $attempt++) {
    $start = New-Object System.Diagnostics.ProcessStartInfo
    $start.FileName = $setup
    $start.Arguments = $arguments
    $start.UseShellExecute = $false
    $start.CreateNoWindow = $true
    $process = [System.Diagnostics.Process]::Start($start)
    try {
        if (-not $process.WaitForExit($SetupTimeoutSeconds * 1000)) {
            $process.Kill()
            Write-Log "the setup did not finish in $SetupTimeoutSeconds s and was stopped"
            exit 1460
        }
        $code = $process.ExitCode
    } finally {
        $process.Dispose()
    }
    Write-Log "`"$setup`" $arguments exited $code (attempt $attempt of $Attempts)"
    if ($code -eq 0 -or $code -eq 3010) {
        exit 0
    }
    if ($code -eq 1641) {
        exit 3010
    }
    if ($code -ne 1618) {
        exit $code
    }
    Start-Sleep -Seconds $DelaySeconds
}
Write-Log "another installation kept the setup waiting for $($Attempts * $DelaySeconds) s"
exit 1618
