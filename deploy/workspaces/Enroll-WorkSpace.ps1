<#
.SYNOPSIS
    Registers this WorkSpace with AWS Systems Manager through the fleet-controller's enrollment
    endpoint. Meant to run at every startup (Group Policy computer startup script, as SYSTEM).

.DESCRIPTION
    1. Does nothing when the SSM Agent is registered and running (idempotent).
    2. Asks the enrollment endpoint over HTTPS for this WorkSpace's own activation:
       POST <Endpoint>/v1/enroll with {"computerName": "<this computer>"}. The controller checks
       the request's source address and this name against DescribeWorkspaces before it answers.
    3. Downloads the SSM Agent installer from AWS's regional location and verifies its
       Authenticode signature (valid chain, pinned signer organisation) before running it.
    4. Installs the agent with the activation and checks the registration took.
    Retries with exponential backoff (honouring Retry-After), and writes every step to the
    Windows Application event log (source FleetEnrollment). The activation code is kept in memory
    only: it is never written to a file, the event log or the console by this script.

    See deploy/workspaces/README.md for the Group Policy set-up and what remains outside this
    script's control (the installer's own logging, PowerShell module logging).

.PARAMETER Endpoint
    Base URL of the enrollment endpoint, https only (e.g. https://enroll.corp.example.com).

.PARAMETER ExpectedSignerOrganization
    The organisation (O=) the installer's Authenticode signer certificate must name.

.PARAMETER MaxAttempts
    How many times to ask the endpoint before giving up until the next startup.

.PARAMETER MaxBackoffSeconds
    The longest wait between two attempts.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^https://[^/]+$')]
    [string]$Endpoint,

    [string]$ExpectedSignerOrganization = 'Amazon.com Services LLC',

    [ValidateRange(1, 50)]
    [int]$MaxAttempts = 10,

    [ValidateRange(5, 3600)]
    [int]$MaxBackoffSeconds = 120
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# --- The enrollment protocol (controller/service/enrollment/protocol.py; a test compares) ------
$EnrollmentPath = '/v1/enroll'
$EnrollmentMethod = 'Post'
$EnrollmentContentType = 'application/json'

# --- Facts about the SSM Agent on Windows, from AWS's documentation ------------------------------
# "Install SSM Agent on hybrid Windows Server nodes" (Systems Manager User Guide,
# https://docs.aws.amazon.com/systems-manager/latest/userguide/hybrid-multicloud-ssm-agent-install-windows.html,
# formerly sysman-install-managed-win.html): the installer is downloaded per Region from
# https://amazon-ssm-<region>.s3.<region>.amazonaws.com/latest/windows_amd64/AmazonSSMAgentSetup.exe,
# run with /q CODE=<code> ID=<id> REGION=<region>, after which the registration is in
# %ProgramData%\Amazon\SSM\InstanceData\registration ({"ManagedInstanceID":"mi-...","Region":...})
# and the service AmazonSSMAgent is running.
$AgentUrlFormat = 'https://amazon-ssm-{0}.s3.{0}.amazonaws.com/latest/windows_amd64/AmazonSSMAgentSetup.exe'
$RegistrationFile = Join-Path $env:ProgramData 'Amazon\SSM\InstanceData\registration'
$AgentService = 'AmazonSSMAgent'
# AWS documents GPG signatures for the Linux packages only ("Verifying the signature of SSM
# Agent", verify-agent-signature.html); it does not name the Windows installer's Authenticode
# signer. The organisation is a parameter: confirm it once on a test WorkSpace
# (Get-AuthenticodeSignature .\AmazonSSMAgentSetup.exe | Format-List *) and pin it.

$EventSource = 'FleetEnrollment'
$Events = @{
    Started = 1000; AlreadyRegistered = 1001; ActivationReceived = 1002; AgentVerified = 1003
    Registered = 1004; Refused = 2001; TryLater = 2002; SignatureInvalid = 3001
    InstallFailed = 3002; GaveUp = 3003
}

function Write-EnrollmentEvent {
    param(
        [Parameter(Mandatory = $true)][string]$Name,
        [Parameter(Mandatory = $true)][string]$Message,
        [ValidateSet('Information', 'Warning', 'Error')][string]$EntryType = 'Information'
    )
    try {
        if (-not [System.Diagnostics.EventLog]::SourceExists($EventSource)) {
            New-EventLog -LogName Application -Source $EventSource
        }
        Write-EventLog -LogName Application -Source $EventSource -EventId $Events[$Name] `
            -EntryType $EntryType -Message $Message
    } catch {
        Write-Warning "event log unavailable: $Message"
    }
}

function Get-Registration {
    if (-not (Test-Path -LiteralPath $RegistrationFile)) { return $null }
    try {
        return Get-Content -LiteralPath $RegistrationFile -Raw | ConvertFrom-Json
    } catch {
        return $null
    }
}

function Test-Registered {
    $registration = Get-Registration
    $service = Get-Service -Name $AgentService -ErrorAction SilentlyContinue
    return ($null -ne $registration) -and ($registration.ManagedInstanceID -like 'mi-*') -and
        ($null -ne $service) -and ($service.Status -eq 'Running')
}

function Get-RetryAfterSeconds {
    param($Response)
    if ($null -eq $Response) { return 0 }
    $value = $Response.Headers['Retry-After']
    $seconds = 0
    if ($value -and [int]::TryParse($value, [ref]$seconds)) { return $seconds }
    return 0
}

function Request-Activation {
    # Returns the answer object, or $null after writing why (the caller backs off and retries).
    $uri = $Endpoint + $EnrollmentPath
    $body = @{ computerName = $env:COMPUTERNAME } | ConvertTo-Json -Compress
    try {
        return Invoke-RestMethod -Uri $uri -Method $EnrollmentMethod -Body $body `
            -ContentType $EnrollmentContentType -UseBasicParsing -TimeoutSec 30
    } catch [System.Net.WebException] {
        $response = $_.Exception.Response
        $status = if ($null -ne $response) { [int]$response.StatusCode } else { 0 }
        $script:RetryAfter = Get-RetryAfterSeconds -Response $response
        switch ($status) {
            403 {
                Write-EnrollmentEvent -Name Refused -EntryType Warning -Message (
                    "The enrollment endpoint refused $env:COMPUTERNAME (403). A WorkSpace created" +
                    " moments ago may not be visible yet; otherwise its address or name does not" +
                    " match DescribeWorkspaces. The controller's log says which.")
            }
            { $_ -in 429, 503 } {
                Write-EnrollmentEvent -Name TryLater -EntryType Warning -Message (
                    "The enrollment endpoint answered $status; retrying after" +
                    " $($script:RetryAfter) second(s) or more.")
            }
            default {
                Write-EnrollmentEvent -Name TryLater -EntryType Warning -Message (
                    "The enrollment endpoint could not be reached or failed (status $status):" +
                    " $($_.Exception.Message)")
            }
        }
        return $null
    } catch {
        # Only the type: the message of a failure to read an answer could quote the answer.
        Write-EnrollmentEvent -Name TryLater -EntryType Warning -Message (
            "Asking the enrollment endpoint failed: $($_.Exception.GetType().FullName).")
        return $null
    }
}

function Install-Agent {
    param(
        [Parameter(Mandatory = $true)]$Answer
    )
    $region = [string]$Answer.region
    if ($region -notmatch '^[a-z]{2}(-[a-z]+)+-\d{1,2}$') { throw "unexpected Region '$region'" }
    $workDirectory = Join-Path $env:ProgramData 'FleetEnrollment'
    New-Item -ItemType Directory -Path $workDirectory -Force | Out-Null
    $installer = Join-Path $workDirectory 'AmazonSSMAgentSetup.exe'
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor
        [Net.SecurityProtocolType]::Tls12
    Invoke-WebRequest -Uri ($AgentUrlFormat -f $region) -OutFile $installer -UseBasicParsing
    try {
        $signature = Get-AuthenticodeSignature -FilePath $installer
        $subject = if ($signature.SignerCertificate) { $signature.SignerCertificate.Subject } else { '' }
        $organization = if ($subject -match '(?:^|,\s*)O="?([^",]+)"?') { $Matches[1] } else { '' }
        if ($signature.Status -ne 'Valid' -or $organization -ne $ExpectedSignerOrganization) {
            Write-EnrollmentEvent -Name SignatureInvalid -EntryType Error -Message (
                "The downloaded SSM Agent installer was not run: signature $($signature.Status)," +
                " signer '$subject' (expected organisation '$ExpectedSignerOrganization').")
            return $false
        }
        Write-EnrollmentEvent -Name AgentVerified -Message "SSM Agent installer signed by '$subject'."
        # The code goes to the installer's command line, as AWS's procedure does, and nowhere else.
        $arguments = @('/q', "CODE=$($Answer.activationCode)", "ID=$($Answer.activationId)", "REGION=$region")
        $process = Start-Process -FilePath $installer -ArgumentList $arguments -Wait -PassThru
        $arguments = $null
        if ($process.ExitCode -ne 0) {
            Write-EnrollmentEvent -Name InstallFailed -EntryType Error -Message (
                "AmazonSSMAgentSetup.exe exited $($process.ExitCode).")
            return $false
        }
    } finally {
        Remove-Item -LiteralPath $installer -Force -ErrorAction SilentlyContinue
    }
    # Check the registration took: the registration file names an mi- and the service runs.
    for ($wait = 0; $wait -lt 60 -and -not (Test-Registered); $wait += 5) { Start-Sleep -Seconds 5 }
    return (Test-Registered)
}

# --- main ---------------------------------------------------------------------------------------
if (Test-Registered) {
    $registration = Get-Registration
    Write-EnrollmentEvent -Name AlreadyRegistered -Message (
        "Already registered as $($registration.ManagedInstanceID); nothing to do.")
    exit 0
}
Write-EnrollmentEvent -Name Started -Message "Enrolling $env:COMPUTERNAME at $Endpoint."
$random = New-Object System.Random
for ($attempt = 1; $attempt -le $MaxAttempts; $attempt++) {
    $script:RetryAfter = 0
    $answer = Request-Activation
    if ($null -ne $answer) {
        Write-EnrollmentEvent -Name ActivationReceived -Message (
            "Activation $($answer.activationId) received for $($answer.workspaceId)" +
            " (expires $($answer.expiresAt)).")
        try {
            $registered = Install-Agent -Answer $answer
        } catch {
            $registered = $false
            Write-EnrollmentEvent -Name InstallFailed -EntryType Error -Message (
                "Installing the SSM Agent failed: $($_.Exception.GetType().FullName):" +
                " $($_.Exception.Message)")
        }
        $answer = $null
        if ($registered) {
            $registration = Get-Registration
            Write-EnrollmentEvent -Name Registered -Message (
                "Registered as $($registration.ManagedInstanceID) in $($registration.Region).")
            exit 0
        }
    }
    $backoff = [Math]::Min($MaxBackoffSeconds, 5 * [Math]::Pow(2, $attempt - 1))
    $delay = [Math]::Max($backoff, $script:RetryAfter) + $random.Next(0, 5)
    Start-Sleep -Seconds $delay
}
Write-EnrollmentEvent -Name GaveUp -EntryType Error -Message (
    "Not registered after $MaxAttempts attempt(s); the next startup tries again.")
exit 1
